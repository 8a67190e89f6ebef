//! Profiles of the config file: found in the platform's config directory or at
//! `LEAPCRAFT_CONFIG`, chosen by `--profile` or `LEAPCRAFT_PROFILE` (else `default`), below
//! every flag and environment variable; refused when the file shows a key to others, and
//! never printing it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::*;
use leapcraft_fake::FakeServer;

/// Writes `text` to `path` (its directories too) with `mode`.
fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A profile with the fake's URL and `key`.
fn profile(name: &str, fake: &FakeServer, key: &str) -> String {
    format!(
        "[profile.{name}]\napi-key = \"{key}\"\nbase-url = \"{}\"\n",
        fake.base_url()
    )
}

/// The binary with the config file `config`.
fn with_config(config: &Path) -> assert_cmd::Command {
    let mut cmd = bare();
    cmd.env("LEAPCRAFT_CONFIG", config);
    cmd
}

/// The exit code and stderr of a run of `devices`, checked to hold no key.
fn devices(cmd: &mut assert_cmd::Command, fake: &FakeServer) -> (i32, String) {
    let out = cmd.args(["devices", "--format", "json"]).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(fake.api_key()), "the key in: {stderr}");
    (out.status.code().unwrap(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_profile_in_the_config_directory_needs_no_flag() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = profile("default", &fake, fake.api_key());

    let xdg = dir.path().join("xdg");
    write(&xdg.join("leapcraft/config.toml"), &config, 0o600);
    let listed = json_list(bare().env("XDG_CONFIG_HOME", &xdg).arg("devices"));
    assert_eq!(listed.len(), 3);

    let home = dir.path().join("home");
    write(&home.join(".config/leapcraft/config.toml"), &config, 0o600);
    let listed = json_list(
        bare()
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .arg("devices"),
    );
    assert_eq!(listed.len(), 3, "~/.config/leapcraft/config.toml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_beats_the_environment_which_beats_the_profile() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("leapcraft.toml");
    let unreachable = "http://127.0.0.1:9/v1";
    write(
        &config,
        &[
            profile("default", &fake, "not-the-key"),
            profile("right", &fake, fake.api_key()),
            profile("wrong", &fake, "not-the-key"),
        ]
        .concat(),
        0o600,
    );
    let key_file = dir.path().join("key");
    write(&key_file, fake.api_key(), 0o600);
    let run = |cmd: &mut assert_cmd::Command| devices(cmd, &fake);

    assert_eq!(run(&mut with_config(&config)).0, 3, "the default profile");
    assert_eq!(run(with_config(&config).args(["--profile", "right"])).0, 0);
    assert_eq!(
        run(with_config(&config).env("LEAPCRAFT_PROFILE", "right")).0,
        0
    );
    assert_eq!(
        run(with_config(&config)
            .env("LEAPCRAFT_PROFILE", "right")
            .args(["--profile", "wrong"]))
        .0,
        3,
        "--profile over LEAPCRAFT_PROFILE"
    );
    assert_eq!(
        run(with_config(&config).args(["--profile", "wrong", "--api-key", fake.api_key()])).0,
        0,
        "--api-key over the profile's"
    );
    assert_eq!(
        run(with_config(&config)
            .args(["--profile", "wrong"])
            .env("LEAPCRAFT_API_KEY", fake.api_key()))
        .0,
        0,
        "LEAPCRAFT_API_KEY over the profile's"
    );
    assert_eq!(
        run(with_config(&config)
            .args(["--profile", "wrong", "--api-key-file"])
            .arg(&key_file))
        .0,
        0,
        "--api-key-file over the profile's key"
    );
    let (code, stderr) = run(with_config(&config).args([
        "--profile",
        "right",
        "--max-attempts",
        "1",
        "--base-url",
        unreachable,
    ]));
    assert_eq!(code, 1, "--base-url over the profile's: {stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    let (code, stderr) = run(with_config(&config)
        .args(["--profile", "right", "--max-attempts", "1"])
        .env("LEAPCRAFT_BASE_URL", unreachable));
    assert_eq!(code, 1, "LEAPCRAFT_BASE_URL over the profile's: {stderr}");

    let (code, stderr) = run(with_config(&config).args(["--profile", "staging"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no profile `staging`") && stderr.contains("`default`, `right`, `wrong`"),
        "{stderr}"
    );

    let (code, stderr) = run(with_config(&config).args(["-vv", "--profile", "right"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("settings from the profile") && stderr.contains("right"),
        "the debug log names the profile: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_readable_by_others_is_refused_and_never_shown() {
    let fake = FakeServer::builder().devices(3).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");

    write(&config, &profile("default", &fake, fake.api_key()), 0o644);
    let (code, stderr) = devices(&mut with_config(&config), &fake);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("it holds an API key") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    // Without a key, readable by others is fine; the key file it names (beside it) is not.
    let keyless = format!(
        "[profile.default]\napi-key-file = \"secret/key\"\nbase-url = \"{}\"\n",
        fake.base_url()
    );
    write(&config, &keyless, 0o644);
    let key_file: PathBuf = dir.path().join("secret/key");
    write(&key_file, fake.api_key(), 0o600);
    assert_eq!(devices(&mut with_config(&config), &fake).0, 0);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, stderr) = devices(&mut with_config(&config), &fake);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("profile `default`: api-key-file") && stderr.contains("chmod 600"),
        "{stderr}"
    );

    // A file that cannot be read quotes none of it.
    write(
        &config,
        &format!("[profile.default]\napi-key = \"{}\n", fake.api_key()),
        0o600,
    );
    let (code, stderr) = devices(&mut with_config(&config), &fake);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn unknown_keys_are_named_and_help_tells_of_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    write(
        &config,
        "[profile.default]\nbase-url = \"https://x.example/v1\"\nmax-rsp = 3\n",
        0o600,
    );
    let out = with_config(&config).arg("devices").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 3") && stderr.contains("unknown field `max-rsp`"),
        "{stderr}"
    );

    let help = stdout_of(bare().arg("--help"));
    assert!(
        help.contains("--profile <NAME>")
            && help.contains("LEAPCRAFT_PROFILE")
            && help.contains("[profile.default]")
            && help.contains("~/.config/leapcraft"),
        "{help}"
    );
    let help = stdout_of(bare().args(["devices", "--help"]));
    assert!(help.contains("--profile <NAME>"), "{help}");
}
