//! Embeds the engine: streams changes as they are found and stops after the
//! first ten rows, then prints a summary.
//!
//! `cargo run -p diff-core --example diff -- "dbname=shop" "dbname=shop_branch"`

use diff_core::{ConnConfig, Event, Options, SideName};

#[tokio::main]
async fn main() -> diff_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (parent, child) = match args.as_slice() {
        [_, p, c] => (p.as_str(), c.as_str()),
        _ => {
            eprintln!("usage: diff PARENT CHILD");
            std::process::exit(2);
        }
    };
    let parent = ConnConfig::parse(SideName::Parent, parent)?;
    let child = ConnConfig::parse(SideName::Child, child)?;
    let mut stream = diff_core::start(&parent, &child, &Options::default()).await?;
    let mut tables = vec![];
    let mut shown = 0;
    while let Some(event) = stream.next().await {
        match event? {
            Event::Started { tables: t, .. } => tables = t,
            Event::Schema(change) => println!("schema: {:?} {} {}", change.op, change.kind, change.object),
            Event::Row { table, change } => {
                println!(
                    "{}: {:?} key={:?} changed={:?}",
                    tables[table].qualified(),
                    change.op,
                    change.key,
                    change.changed
                );
                shown += 1;
                if shown == 10 {
                    println!("(stopping early)");
                    break; // dropping the stream stops the diff
                }
            }
            Event::TableDone { table, summary } => println!("{}: {:?}", tables[table].qualified(), summary.counts),
            Event::DataLoss(loss) => println!("lost: {} {} {}", loss.kind.id(), loss.object(), loss.count),
            Event::Progress { .. } => {}
            _ => {}
        }
    }
    Ok(())
}
