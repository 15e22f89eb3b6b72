//! Helpers the CLI's binary tests share.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr};

/// The approval address `connect` prints on standard error, read from a running `child`
/// (spawned with `stderr(Stdio::piped())`); the rest of its standard error comes back too.
///
/// # Panics
/// When no address is printed within 30 s.
pub async fn printed_url(child: &mut Child) -> (String, Lines<BufReader<ChildStderr>>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.expect("reading stderr") {
            if let Some(i) = line.find("http") {
                return line[i..].trim().to_string();
            }
        }
        panic!("no authorize URL printed");
    })
    .await
    .expect("the authorize URL");
    (url, stderr)
}
