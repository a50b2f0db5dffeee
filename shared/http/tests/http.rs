//! The HTTP upstream against a small server on 127.0.0.1 that answers
//! fixed responses: a file, a redirect to it, a missing file, a server
//! error, a body that stalls, and writes refused.

use std::time::Duration;

use raptr_http::HttpStore;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves on a free loopback port until the test ends; returns its base URL.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let head_only = req.starts_with("HEAD ");
                let (status, extra, body): (&str, String, Vec<u8>) = match path.as_str() {
                    "/repo/dists/stable/InRelease" => (
                        "200 OK",
                        "ETag: \"abc\"\r\n".into(),
                        b"Suite: stable\n".to_vec(),
                    ),
                    "/repo/moved" => (
                        "301 Moved Permanently",
                        "Location: /repo/dists/stable/InRelease\r\n".into(),
                        Vec::new(),
                    ),
                    "/repo/broken" => ("503 Service Unavailable", String::new(), Vec::new()),
                    "/repo/forbidden" => ("403 Forbidden", String::new(), Vec::new()),
                    "/repo/stall" => {
                        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\npartial";
                        let _ = sock.write_all(head.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    _ => ("404 Not Found", String::new(), Vec::new()),
                };
                let mut out = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                    body.len()
                )
                .into_bytes();
                if !head_only {
                    out.extend_from_slice(&body);
                }
                let _ = sock.write_all(&out).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/repo")
}

#[tokio::test]
async fn an_upstream_is_read_over_http_and_never_written() {
    let base = serve().await;
    let store = HttpStore::new(&base).expect("store");
    let (body, meta) = store.get("dists/stable/InRelease").await.expect("get");
    assert_eq!(&body[..], b"Suite: stable\n");
    assert_eq!((meta.size, meta.etag.as_str()), (14, "\"abc\""));
    assert_eq!(
        store
            .head("dists/stable/InRelease")
            .await
            .expect("head")
            .size,
        14
    );
    let (body, _) = store.get("moved").await.expect("a redirect is followed");
    assert_eq!(&body[..], b"Suite: stable\n");
    let limited = store.get_limited("dists/stable/InRelease", 4).await;
    assert!(
        matches!(limited, Err(StoreError::TooLarge { .. })),
        "{limited:?}"
    );
    assert!(matches!(
        store.get("dists/stable/Release").await,
        Err(StoreError::NotFound { .. })
    ));
    let e = store.get("broken").await.expect_err("503");
    assert!(e.is_transient(), "{e}");
    let e = store.get("forbidden").await.expect_err("403");
    assert!(!e.is_transient() && e.to_string().contains("403"), "{e}");
    for e in [
        store
            .put("x", bytes::Bytes::from_static(b"x"), PutOptions::default())
            .await
            .expect_err("read-only"),
        store.delete("x").await.expect_err("read-only"),
        store.list_page("", None).await.expect_err("no listing"),
    ] {
        assert!(matches!(e, StoreError::Permanent { .. }), "{e}");
    }
    assert!(HttpStore::new("ftp://example.invalid/").is_err());
}

#[tokio::test]
async fn a_body_that_stalls_fails_instead_of_hanging() {
    let base = serve().await;
    let store = HttpStore::new(&base)
        .expect("store")
        .with_read_timeout(Duration::from_millis(300));
    let (mut body, _) = store.get_stream("stall").await.expect("head arrives");
    let mut buf = Vec::new();
    let e = body.read_to_end(&mut buf).await.expect_err("stalls");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert_eq!(&buf[..], b"partial");
}
