//! Prints the server's identity as one line:
//! `systemid=<u64> timeline=<n> xlogpos=<X/Y>`.
//!
//! ```text
//! cargo run -p pgwire-repl --example identify_system -- "host=/tmp port=5432 user=postgres"
//! cargo run -p pgwire-repl --example identify_system -- postgres://replicator@db1/postgres
//! ```
//! Unset options come from PGHOST, PGPORT, PGUSER, PGPASSWORD, … and the password file.

use pgwire_repl::error::Report;
use pgwire_repl::{Client, Config};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let conninfo = std::env::args().nth(1).unwrap_or_default();
    if let Err(e) = run(&conninfo).await {
        eprintln!("identify_system: error: {}", Report(&e));
        std::process::exit(1);
    }
}

async fn run(conninfo: &str) -> pgwire_repl::Result<()> {
    let config = Config::from_env_and(conninfo)?;
    let mut client = Client::connect(&config).await?;
    let sys = client.identify_system().await?;
    println!(
        "systemid={} timeline={} xlogpos={}",
        sys.system_id, sys.timeline, sys.xlogpos
    );
    client.close().await
}
