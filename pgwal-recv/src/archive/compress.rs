//! `-Z/--compress METHOD[:DETAIL]`: the compression specification, with PostgreSQL's rules
//! and wording (`src/common/compression.c`), plus zstd, which pg_receivewal lacks.

use std::fmt;

/// The compression method of the archive's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    None,
    Gzip,
    Lz4,
    Zstd,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Gzip => "gzip",
            Method::Lz4 => "lz4",
            Method::Zstd => "zstd",
        }
    }

    /// The file name suffix of a complete segment.
    pub fn suffix(self) -> &'static str {
        match self {
            Method::None => "",
            Method::Gzip => ".gz",
            Method::Lz4 => ".lz4",
            Method::Zstd => ".zst",
        }
    }

    /// (min, max, default) levels, as PostgreSQL reports them.
    fn levels(self) -> Option<(i32, i32, i32)> {
        match self {
            Method::None => None,
            Method::Gzip => Some((1, 9, -1)),
            Method::Lz4 => Some((1, 12, 0)),
            Method::Zstd => Some((1, 22, 3)),
        }
    }
}

/// A parsed `-Z` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressSpec {
    pub method: Method,
    /// `None` means the method's default level.
    pub level: Option<i32>,
}

impl Default for CompressSpec {
    fn default() -> Self {
        CompressSpec {
            method: Method::None,
            level: None,
        }
    }
}

impl fmt::Display for CompressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(l) => write!(f, "{}:{l}", self.method.name()),
            None => f.write_str(self.method.name()),
        }
    }
}

fn parse_int(s: &str) -> Option<i32> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    t.parse().ok()
}

impl CompressSpec {
    /// Parses `METHOD[:DETAIL]`, or a bare integer (N means gzip:N, 0 means none). The error
    /// is the text that follows `pgwal-recv: error: `.
    pub fn parse(s: &str) -> Result<CompressSpec, String> {
        let invalid = |why: String| format!("invalid compression specification: {why}");
        if let Some(n) = parse_int(s) {
            return if n == 0 {
                Ok(CompressSpec::default())
            } else {
                CompressSpec::validate(Method::Gzip, Some(n)).map_err(invalid)
            };
        }
        let (alg, detail) = match s.split_once(':') {
            Some((a, d)) => (a, Some(d)),
            None => (s, None),
        };
        let method = match alg {
            "none" => Method::None,
            "gzip" => Method::Gzip,
            "lz4" => Method::Lz4,
            "zstd" => Method::Zstd,
            _ => return Err(format!("unrecognized compression algorithm: \"{alg}\"")),
        };
        let mut level = None;
        match detail {
            None => {}
            Some(d) if parse_int(d).is_some() => level = parse_int(d),
            Some(d) => {
                for item in d.split(',') {
                    let (key, value) = match item.split_once('=') {
                        Some((k, v)) => (k.trim(), Some(v.trim())),
                        None => (item.trim(), None),
                    };
                    if key.is_empty() {
                        return Err(invalid(
                            "found empty string where a compression option was expected".into(),
                        ));
                    }
                    match key {
                        "level" => {
                            let v = value.ok_or_else(|| {
                                invalid(format!("compression option \"{key}\" requires a value"))
                            })?;
                            level = Some(parse_int(v).ok_or_else(|| {
                                invalid(format!(
                                    "value for compression option \"{key}\" must be an integer"
                                ))
                            })?);
                        }
                        "workers" => {
                            return Err(invalid(format!(
                                "compression algorithm \"{}\" does not accept a worker count",
                                method.name()
                            )))
                        }
                        "long" => {
                            return Err(invalid(format!(
                                "compression algorithm \"{}\" does not support long-distance mode",
                                method.name()
                            )))
                        }
                        _ => {
                            return Err(invalid(format!(
                                "unrecognized compression option: \"{key}\""
                            )))
                        }
                    }
                }
            }
        }
        CompressSpec::validate(method, level).map_err(invalid)
    }

    fn validate(method: Method, level: Option<i32>) -> Result<CompressSpec, String> {
        if let Some(l) = level {
            let Some((min, max, default)) = method.levels() else {
                return Err(format!(
                    "compression algorithm \"{}\" does not accept a compression level",
                    method.name()
                ));
            };
            if l < min || l > max {
                return Err(format!(
                    "compression algorithm \"{}\" expects a compression level between {min} and {max} (default at {default})",
                    method.name()
                ));
            }
        }
        Ok(CompressSpec { method, level })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> CompressSpec {
        CompressSpec::parse(s).unwrap()
    }

    #[test]
    fn accepted() {
        assert_eq!(ok("none"), CompressSpec::default());
        assert_eq!(ok("0"), CompressSpec::default());
        assert_eq!(
            ok("5"),
            CompressSpec {
                method: Method::Gzip,
                level: Some(5)
            }
        );
        assert_eq!(
            ok("gzip"),
            CompressSpec {
                method: Method::Gzip,
                level: None
            }
        );
        assert_eq!(
            ok("gzip:9"),
            CompressSpec {
                method: Method::Gzip,
                level: Some(9)
            }
        );
        assert_eq!(
            ok("lz4:level=12"),
            CompressSpec {
                method: Method::Lz4,
                level: Some(12)
            }
        );
        assert_eq!(
            ok("zstd:22"),
            CompressSpec {
                method: Method::Zstd,
                level: Some(22)
            }
        );
        assert_eq!(ok("zstd").method.suffix(), ".zst");
    }

    #[test]
    fn refused_with_postgres_wording() {
        let err = |s: &str| CompressSpec::parse(s).unwrap_err();
        assert_eq!(
            err("none:1"),
            "invalid compression specification: compression algorithm \"none\" does not accept a compression level"
        );
        assert_eq!(
            err("brotli"),
            "unrecognized compression algorithm: \"brotli\""
        );
        assert_eq!(
            err("gzip:10"),
            "invalid compression specification: compression algorithm \"gzip\" expects a compression level between 1 and 9 (default at -1)"
        );
        assert_eq!(
            err("10"),
            "invalid compression specification: compression algorithm \"gzip\" expects a compression level between 1 and 9 (default at -1)"
        );
        assert!(err("lz4:13").contains("between 1 and 12"));
        assert!(err("zstd:23").contains("between 1 and 22"));
        assert!(err("gzip:level").contains("requires a value"));
        assert!(err("gzip:level=x").contains("must be an integer"));
        assert!(err("gzip:speed=1").contains("unrecognized compression option: \"speed\""));
        assert!(err("zstd:workers=2").contains("worker count"));
    }
}
