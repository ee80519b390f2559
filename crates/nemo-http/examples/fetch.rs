//! The download path alone, for the benchmark: `fetch URL PATH` downloads
//! `URL` to `PATH` through [`HttpTransport::download`] (temporary file,
//! checks, fsync, rename; an existing regular file at `PATH` is replaced)
//! and prints `{"bytes": N, "seconds": S}`.
//!
//! `cargo run --release -p nemo-http --example fetch -- http://127.0.0.1:PORT/file.mp4 out.mp4`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use nemo_core::api::{Api, Attribution};
use nemo_core::transport::{DownloadOptions, DownloadOutcome, Transport};
use nemo_http::{HttpConfig, HttpTransport};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, path] = args.as_slice() else {
        eprintln!("usage: fetch URL PATH");
        return ExitCode::from(2);
    };
    // As the `nemo` command runs it: two worker threads.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let result = runtime.block_on(async {
        let transport = HttpTransport::new(HttpConfig::new(url.clone()))?;
        let request = Api::new(Attribution::default()).download_url(url);
        let options = DownloadOptions {
            overwrite: true,
            ..Default::default()
        };
        transport
            .download(&request, &PathBuf::from(path), options, None)
            .await
    });
    match result {
        Ok(DownloadOutcome::Complete { bytes }) => {
            let seconds = started.elapsed().as_secs_f64();
            println!("{{\"bytes\": {bytes}, \"seconds\": {seconds}}}");
            ExitCode::SUCCESS
        }
        Ok(DownloadOutcome::Refused(response)) => {
            eprintln!("refused: HTTP {}", response.status);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
