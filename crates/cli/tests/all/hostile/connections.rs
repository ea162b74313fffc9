//! Connection hygiene on both planes: slow or idle clients are cut off, and past the connection
//! cap a client gets a clear 503 while the other plane keeps answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::TestServer;

const CONFIG: &str = "[http]\nheader_read_timeout = \"1s\"\nmax_connections = 2\n";

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Waits (blocking, up to 10 s) until the server closes `conn`; returns how long it took.
fn closed_within(conn: &mut TcpStream) -> Duration {
    let start = Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!(
                "the server kept the connection open ({e}) after {:?}",
                start.elapsed()
            ),
        }
    }
}

/// Sends one complete request on `conn` and reads its response head and body (keep-alive).
fn request(conn: &mut TcpStream, host: &str, path: &str) -> String {
    write!(conn, "GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !complete(&got) {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Whether `got` holds a whole response with a `content-length` body.
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    got.len() >= end + 4 + length
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_on_both_planes() {
    let s = TestServer::start_with(CONFIG).await;
    for url in [s.data_url.clone(), s.control_url.clone()] {
        let host = addr(&url);
        let h = host.clone();
        tokio::task::spawn_blocking(move || {
            // Slowloris: a header byte every 200 ms never completes a head in time.
            let mut conn = TcpStream::connect(&h).unwrap();
            conn.write_all(b"GET /v1/health HTTP/1.1\r\n").unwrap();
            let start = Instant::now();
            let mut sent = 0;
            while start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(200));
                if conn.write_all(b"x").is_err() {
                    break;
                }
                sent += 1;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{h}: a client trickling header bytes stayed connected for {:?} ({sent} bytes)",
                start.elapsed()
            );

            // Idle keep-alive: after a response, a connection that sends nothing is closed.
            let mut conn = TcpStream::connect(&h).unwrap();
            let resp = request(&mut conn, &h, "/v1/health");
            assert!(resp.starts_with("HTTP/1.1 "), "{resp}");
            eprintln!("{h}: idle keep-alive");
            let idle = closed_within(&mut conn);
            assert!(idle < Duration::from_secs(5), "{h}: idle for {idle:?}");

            // A socket that never sends a byte is closed too.
            eprintln!("{h}: silent");
            let mut conn = TcpStream::connect(&h).unwrap();
            let silent = closed_within(&mut conn);
            assert!(
                silent < Duration::from_secs(5),
                "{h}: silent for {silent:?}"
            );
        })
        .await
        .unwrap();
        let _ = host;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_gets_a_clear_503_and_the_control_api_still_answers() {
    let s = TestServer::start_with(
        "[http]\nheader_read_timeout = \"30s\"\nmax_connections = 2\ncontrol_max_connections = 5\n",
    )
    .await;
    let data = addr(&s.data_url);
    let control = s.control_url.clone();
    let token = s.token.clone();
    tokio::task::spawn_blocking(move || {
        // Two open keep-alive connections fill the data plane's cap.
        let mut held: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut c = TcpStream::connect(&data).unwrap();
                let resp = request(&mut c, &data, "/nothing-here");
                assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
                c
            })
            .collect();
        let mut third = TcpStream::connect(&data).unwrap();
        write!(third, "GET /nothing-here HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        third
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut resp = String::new();
        third.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
        assert!(resp.contains("retry-after: 1"), "{resp}");
        let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2 connections"),
            "{json}"
        );

        // The control API has a cap of its own and answers meanwhile.
        let mut c = TcpStream::connect(addr(&control)).unwrap();
        write!(
            c,
            "GET /v1/functions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             connection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

        // Once a connection closes its slot is free again.
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = TcpStream::connect(&data).unwrap();
            write!(
                c,
                "GET /nothing-here HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            let mut resp = String::new();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = c.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 404") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the freed slot never came back: {resp}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_told_the_stream_cap() {
    let s = TestServer::start_with("[http]\nh2_max_concurrent_streams = 7\n").await;
    let tcp = tokio::net::TcpStream::connect(addr(&s.data_url))
        .await
        .unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let req = http::Request::get(format!("{}/nothing-here", s.data_url))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    // HTTP/2 with prior knowledge is served, and its SETTINGS carry the cap.
    assert_eq!(resp.status(), 404);
    assert_eq!(client.current_max_send_streams(), 7);
    s.stop().await;
}
