//! Embeds the web client (`../web-client`) into the binary, so a single file serves it.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-client");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = String::from(
        "/// Web client files: (URL path, MIME type, contents, ETag).\npub static ASSETS: &[(&str, &str, &[u8], &str)] = &[\n",
    );
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let mime = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js" | "mjs") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("ico") => "image/x-icon",
            Some("json" | "webmanifest") => "application/json",
            _ => continue,
        };
        let body = std::fs::read(&path).unwrap_or_default();
        let _ = writeln!(
            out,
            "    ({:?}, {:?}, include_bytes!({:?}), {:?}),",
            format!("/{name}"),
            mime,
            path.canonicalize().unwrap_or(path.clone()),
            etag(&body)
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(dest, out).expect("writing assets.rs");
}

/// A strong ETag from the file's contents (64-bit FNV-1a): the same file always gets the
/// same tag, so a browser revalidating an unchanged client gets 304 without its body, and
/// any change in any build gets a new one.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}-{}\"", body.len())
}
