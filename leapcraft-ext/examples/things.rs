//! Things and their parameters: the API's first ten, a smaller number, then all of them.
//!
//! ```text
//! cargo run --example things
//! ```

mod common;

use common::show;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = common::connect().await?;

    // The API returns the first `limit` things (10 unless set), or all with -1.
    let first = client.things().collect().await?;
    println!("First {} things:", first.len());
    for thing in &first {
        println!(
            "  {:<24} {}",
            show(thing.name.as_deref()),
            show(thing.description.as_deref())
        );
        for p in &thing.parameters {
            println!(
                "      {:<26} {}",
                show(p.name.as_deref()),
                show(p.payload.as_deref())
            );
        }
    }

    let three = client.things().page_size(3).collect().await?;
    println!("\nWith a limit of 3: {} things", three.len());
    let all = client.things().page_size(-1).collect().await?;
    println!("All of them: {} things", all.len());
    Ok(())
}
