//! Deadlines: a command's time limit holds whatever the server does, and the
//! message says the time really waited.
//!
//! The server here answers every request with a head and then drips its
//! body, one byte every 50 ms: the idle timeout never fires. The client runs
//! on a clock a hundred times faster than real time (`NEMO_TIME_SCALE`), so
//! its five-minute limit on one API call, retries included, lasts 3 s.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{nemo_std, Run};

/// The client's time scale in these tests.
const SCALE: f64 = 0.01;
/// One API call's limit, retries included, on the client's clock
/// (`nemo_core::machine::Config::request_deadline`).
const CALL_LIMIT: Duration = Duration::from_secs(5 * 60);
/// The pace of the dripped body.
const PACE: Duration = Duration::from_millis(50);
/// The longest body dripped (far more than any test waits for).
const BODY: usize = 4096;

/// A server on 127.0.0.1 that drips every answer. Stops with the value: the
/// accept loop is woken and every connection's loop sees the flag.
struct Dripping {
    addr: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Dripping {
    fn start() -> Dripping {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (count, halt) = (count.clone(), halt.clone());
                std::thread::spawn(move || drip(conn, &count, &halt));
            }
        });
        Dripping {
            addr,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Dripping {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One connection: the request head, then a head announcing `BODY` bytes of
/// JSON and the bytes one by one until the client leaves, the body is
/// sent, or the server stops.
fn drip(mut conn: TcpStream, count: &AtomicUsize, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    count.fetch_add(1, Ordering::SeqCst);
    let mut body =
        br#"{"code":0,"message":"success","data":{"available":95,"frozen":5,"total":100}}"#
            .to_vec();
    body.resize(BODY, b' ');
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {BODY}\r\nconnection: close\r\n\r\n"
    );
    if conn.write_all(answer.as_bytes()).is_err() {
        return;
    }
    for byte in body {
        if stop.load(Ordering::SeqCst) || conn.write_all(&[byte]).is_err() {
            break;
        }
        std::thread::sleep(PACE);
    }
    let _ = conn.shutdown(Shutdown::Both);
}

/// The attempts and the time (on the client's clock) an error line states:
/// `… after 3 attempts over 5m00s …` or `… after 5m00s …`.
fn stated(line: &str) -> Option<(usize, Duration)> {
    let rest = &line[line.find(" request after ")? + " request after ".len()..];
    let (attempts, time) = match rest.split_once(" attempts over ") {
        Some((n, t)) => (n.trim().parse().ok()?, t),
        None => (1, rest),
    };
    let time: String = time
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut secs = 0u64;
    let mut num = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' => num.push(c),
            'h' => secs += 3600 * num.parse::<u64>().ok()?,
            'm' => secs += 60 * num.parse::<u64>().ok()?,
            's' => secs += num.parse::<u64>().ok()?,
            _ => return None,
        }
        if !c.is_ascii_digit() {
            num.clear();
        }
    }
    Some((attempts, Duration::from_secs(secs)))
}

#[test]
fn stated_times_are_read() {
    assert_eq!(
        stated("error: The service did not answer in time: no complete answer to the credits request after 3 attempts over 5m00s."),
        Some((3, Duration::from_secs(300)))
    );
    assert_eq!(
        stated("error: … no complete answer to the credits request after 4m59s."),
        Some((1, Duration::from_secs(299)))
    );
    assert_eq!(stated("error: something else"), None);
}

#[test]
fn a_dripping_answer_ends_by_the_calls_deadline_and_the_message_says_what_happened() {
    let server = Dripping::start();
    let cfg = tempfile::tempdir().expect("tempdir");
    let mut cmd = nemo_std();
    cmd.env("NEMO_API_URL", server.url())
        .env("NEMO_CONFIG_DIR", cfg.path())
        .env("NEMO_TIME_SCALE", SCALE.to_string())
        .env("NEMO_TOKEN", "nmv_usr_deadline_test_token")
        .current_dir(cfg.path())
        .arg("credits");
    let run = Run::of(cmd);
    let limit = CALL_LIMIT.mul_f64(SCALE);
    assert!(
        run.took <= limit.mul_f64(1.5),
        "took {:?}, limit {limit:?}\n{}",
        run.took,
        run.both()
    );
    // A service that did not answer in time is worth trying again: exit 2.
    assert_eq!(run.code, Some(2), "{}", run.both());
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{}", run.both());
    let (attempts, waited) = stated(errors[0]).unwrap_or_else(|| panic!("{}", run.both()));
    assert_eq!(attempts, server.requests(), "{}", run.both());
    // What the message says, in real time, against what really passed
    // (the process's start and end on top).
    let said = waited.mul_f64(SCALE);
    assert!(
        said <= run.took && run.took - said < Duration::from_millis(1500),
        "said {waited:?} on the client's clock ({said:?} real), took {:?}\n{}",
        run.took,
        run.both()
    );
    assert!(!run.stderr.contains("nmv_usr_deadline_test_token"));
}
