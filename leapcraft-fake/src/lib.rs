//! A fake Leapcraft server (work in progress).
