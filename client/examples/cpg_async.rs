//! `cargo run -p totem-client --features tokio --example cpg_async [GROUP]`: the chat of
//! `cpg_chat`, written with `AsyncCpg` on a current-thread tokio runtime: one task selects
//! over stdin lines and `next_event().await`.

use tokio::io::AsyncBufReadExt as _;
use totem_client::cpg::{AsyncCpg, Event, Guarantee};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn core::error::Error>> {
    let group = std::env::args().nth(1).unwrap_or_else(|| "chat".to_owned());
    let mut cpg = AsyncCpg::initialize().await?;
    let me = cpg.local_get().await?;
    cpg.join(&group).await?;
    println!(
        "node {} pid {}: joined {group}; Ctrl-D leaves",
        me.0,
        std::process::id()
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => loop {
                    match cpg.mcast(&group, Guarantee::Agreed, line.as_bytes()).await {
                        Err(e) if e.is_try_again() => {
                            tokio::time::sleep(core::time::Duration::from_millis(1)).await;
                        }
                        other => break other?,
                    }
                },
                None => break,
            },
            event = cpg.next_event() => match event? {
                Event::Deliver { sender_nodeid, sender_pid, payload, .. } => println!(
                    "<{}/{sender_pid}> {}",
                    sender_nodeid.0,
                    String::from_utf8_lossy(&payload)
                ),
                other => println!("* {other:?}"),
            },
        }
    }
    cpg.finalize().await?;
    Ok(())
}
