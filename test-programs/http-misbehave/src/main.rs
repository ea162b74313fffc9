//! `http_misbehave`: a guest that misbehaves on request, so tests can check that each failure
//! ends only its own invocation with the right status while the host keeps serving.
//!
//! | query | behaviour | expected from Updraft |
//! | --- | --- | --- |
//! | `?loop` | spins in pure compute forever | 504 once the timeout passes |
//! | `?work=<n>` | `n` million iterations of pure compute, then 200 `worked` | 200, however long it must share the CPU |
//! | `?sleep=<ms>` | awaits a timer (host-side wait) | 504 if `ms` exceeds the timeout |
//! | `?alloc=<bytes>` | allocates and touches that many bytes | 500 past the memory limit |
//! | `?recurse` | unbounded recursion | 500 (stack overflow) |
//! | `?trap` | executes `unreachable` | 500 |
//! | `?huge=<bytes>` | answers that many bytes with `content-length` | 502 past `max_response_body` |
//! | `?stream=<bytes>` | streams that many bytes, no `content-length` | cut off past the cap |
//! | `?slowbody` | sends the head, then a line every 100 ms forever | body ends at the timeout |
//! | `?flood=<n>` | prints `n` empty lines | at most 10 000 stored, and the function's lines-per-second budget |
//! | `?resources=<n>` | holds `n` host resources (empty `wasi:http` fields) at once | 500 past `[sandbox] max_resources` |
//! | anything else | 200 `fine` | 200 |

use std::hint::black_box;

use futures_lite::stream;
use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let arg = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<u64>().ok())
    };
    if query == "loop" {
        let mut x: u64 = 0;
        loop {
            x = black_box(x.wrapping_add(1));
        }
    }
    if let Some(millions) = arg("work") {
        let mut x: u64 = 0;
        for _ in 0..millions.saturating_mul(1_000_000) {
            x = black_box(x.wrapping_add(1));
        }
        return Ok(Response::new(Body::from(format!("worked {}\n", x / 1_000_000))));
    }
    if let Some(ms) = arg("sleep") {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
    }
    if let Some(bytes) = arg("alloc") {
        let v = vec![1u8; bytes as usize];
        println!("allocated {} bytes", black_box(&v).len());
    }
    if query == "recurse" {
        println!("depth {}", recurse(black_box(1)));
    }
    if query == "trap" {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
    }
    if let Some(bytes) = arg("huge") {
        let mut response = Response::new(Body::from(vec![b'x'; bytes as usize]));
        response
            .headers_mut()
            .insert("content-length", bytes.to_string().parse().unwrap());
        return Ok(response);
    }
    if let Some(bytes) = arg("stream") {
        const CHUNK: u64 = 64 << 10;
        let chunks = stream::unfold(bytes, |left| async move {
            (left > 0).then(|| (vec![b'x'; left.min(CHUNK) as usize], left.saturating_sub(CHUNK)))
        });
        return Ok(Response::new(Body::from_stream(chunks)));
    }
    if let Some(n) = arg("flood") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for _ in 0..n {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
        return Ok(Response::new(Body::from("flooded\n")));
    }
    if let Some(n) = arg("resources") {
        let held: Vec<_> = (0..n).map(|_| wasip2::http::types::Fields::new()).collect();
        return Ok(Response::new(Body::from(format!("held {}\n", black_box(&held).len()))));
    }
    if query == "slowbody" {
        let ticks = stream::unfold(0u64, |n| async move {
            wstd::task::sleep(wstd::time::Duration::from_millis(100)).await;
            Some((format!("tick {n}\n").into_bytes(), n + 1))
        });
        return Ok(Response::new(Body::from_stream(ticks)));
    }
    Ok(Response::new(Body::from("fine\n")))
}

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = black_box([n; 64]);
    recurse(frame[0] + 1) + frame[63]
}
