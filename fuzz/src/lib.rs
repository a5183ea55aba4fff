//! Oracles shared by the fuzz targets: independent re-statements of what the code under test
//! must do, simple enough to be obviously right, to compare its answers with.

use pgwal_recv::archive::compress::Method;
use pgwire_repl::Config;

/// The archive's file-name rule written out plainly: 24 uppercase hex digits (timeline,
/// then the segment number as "xlogid" and the segment within it, which must be below the
/// segments per xlogid), then `""`, `.gz`, `.lz4` or `.zst`, then optionally `.partial`.
/// Returns (timeline, segment number, compression suffix, partial).
pub fn segment_name(name: &str, seg_bytes: u32) -> Option<(u32, u64, &'static str, bool)> {
    let b = name.as_bytes();
    if b.len() < 24
        || !b[..24]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
    {
        return None;
    }
    let hex = |r: std::ops::Range<usize>| {
        b[r].iter().fold(0u64, |v, &c| {
            v * 16
                + u64::from(if c.is_ascii_digit() {
                    c - b'0'
                } else {
                    c - b'A' + 10
                })
        })
    };
    let per = (1u64 << 32) / u64::from(seg_bytes);
    let (tli, hi, lo) = (hex(0..8), hex(8..16), hex(16..24));
    if lo >= per {
        return None;
    }
    let rest = &b[24..];
    let (rest, partial) = match rest.strip_suffix(b".partial") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let ext = [".gz", ".lz4", ".zst", ""]
        .into_iter()
        .find(|e| rest == e.as_bytes())?;
    Some((tli as u32, hi * per + lo, ext, partial))
}

/// The file suffix of a compression method.
pub fn method_ext(m: Method) -> &'static str {
    match m {
        Method::None => "",
        Method::Gzip => ".gz",
        Method::Lz4 => ".lz4",
        Method::Zstd => ".zst",
    }
}

/// Every field of `c`, as (keyword, value) in the text `Config::set` takes.
fn keywords(c: &Config) -> Vec<(&'static str, String)> {
    // Destructured whole, so a new field fails to compile here until the oracle knows it.
    let Config {
        host,
        hostaddr,
        port,
        user,
        password,
        dbname,
        application_name,
        fallback_application_name,
        options,
        connect_timeout,
        sslmode,
        sslnegotiation,
        sslrootcert,
        sslcert,
        sslkey,
        sslsni,
        channel_binding,
        target_session_attrs,
        passfile,
    } = c;
    let mut out = Vec::new();
    for (k, v) in [
        ("host", host),
        ("hostaddr", hostaddr),
        ("port", port),
        ("user", user),
        ("password", password),
        ("dbname", dbname),
        ("application_name", application_name),
        ("fallback_application_name", fallback_application_name),
        ("options", options),
        ("sslrootcert", sslrootcert),
        ("sslcert", sslcert),
        ("sslkey", sslkey),
    ] {
        if let Some(v) = v {
            out.push((k, v.clone()));
        }
    }
    for (k, v) in [
        ("sslmode", sslmode.map(|m| m.as_str())),
        ("sslnegotiation", sslnegotiation.map(|m| m.as_str())),
        ("channel_binding", channel_binding.map(|m| m.as_str())),
        (
            "target_session_attrs",
            target_session_attrs.map(|m| m.as_str()),
        ),
        ("sslsni", sslsni.map(|b| if b { "1" } else { "0" })),
    ] {
        if let Some(v) = v {
            out.push((k, v.to_owned()));
        }
    }
    if let Some(t) = connect_timeout {
        out.push(("connect_timeout", t.as_secs().to_string()));
    }
    if let Some(p) = passfile {
        out.push(("passfile", p.to_str().expect("set from a str").to_owned()));
    }
    out
}

/// `c` written as a key=value string, every value single-quoted with `\` and `'` escaped.
pub fn to_conninfo(c: &Config) -> String {
    let mut s = String::new();
    for (k, v) in keywords(c) {
        let v = v.replace('\\', "\\\\").replace('\'', "\\'");
        s.push_str(&format!("{k}='{v}' "));
    }
    s
}

/// `c` written as a URI with every setting a query parameter, every byte percent-encoded.
/// `None` if a value holds NUL, which a URI cannot carry (`%00` is refused, as in libpq).
pub fn to_uri(c: &Config) -> Option<String> {
    let mut s = String::from("postgresql://?");
    for (i, (k, v)) in keywords(c).into_iter().enumerate() {
        if v.contains('\0') {
            return None;
        }
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracles() {
        let mb = 1 << 20;
        assert_eq!(
            segment_name("0000000200000001000000FF.gz.partial", mb),
            Some((2, 4096 + 255, ".gz", true))
        );
        assert_eq!(segment_name("000000020000000100001000", mb), None);
        assert_eq!(segment_name("0000000200000001000000ff", mb), None);
        let c = Config::parse("host='a b' port=5 user=x\\'y connect_timeout=1").unwrap();
        assert_eq!(Config::parse(&to_conninfo(&c)).unwrap(), c);
        assert_eq!(Config::parse(&to_uri(&c).unwrap()).unwrap(), c);
    }
}

/// The output of a future that is ready at its first poll, as the archive's directory store
/// is (it answers inline); a future that is not is a bug here.
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the directory store never waits"),
    }
}
