//! Which half of the seed's hybrid deployment a demo server impersonates.
//!
//! Owns only the name and its parsing; the differences in behaviour live in the
//! handlers that read it.

use std::fmt;
use std::str::FromStr;

/// The container type a [`DemoServer`](crate::DemoServer) pretends to be.
///
/// The flavor shows in `GET /health/`, in `served_by` of `GET /api/auth/me/` and in
/// the `X-Served-By` header of every response. `wsgi` and `asgi` serve every
/// endpoint; `wsgi-only` is the deliberately broken target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// The synchronous Django container (gunicorn in the seed plan).
    #[default]
    Wsgi,
    /// The asynchronous container (channels / daphne in the seed plan).
    Asgi,
    /// The WSGI container reached with nothing routing streams and sockets to
    /// ASGI (a misrouted nginx): the message stream is buffered into one
    /// response, WebSocket upgrades get a 404. The target seed specs TC-005 and
    /// TC-006 must fail against.
    WsgiOnly,
}

impl Flavor {
    /// Every flavor.
    pub const ALL: [Flavor; 3] = [Flavor::Wsgi, Flavor::Asgi, Flavor::WsgiOnly];

    /// The lowercase name: `wsgi`, `asgi` or `wsgi-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wsgi => "wsgi",
            Self::Asgi => "asgi",
            Self::WsgiOnly => "wsgi-only",
        }
    }

    /// The container type it reports (`wsgi` for `wsgi-only` too).
    pub fn container_type(self) -> &'static str {
        match self {
            Self::Wsgi | Self::WsgiOnly => "wsgi",
            Self::Asgi => "asgi",
        }
    }

    /// Whether streams arrive as they are made and WebSocket upgrades work.
    pub fn streams(self) -> bool {
        !matches!(self, Self::WsgiOnly)
    }

    /// Whether the health document reports `"async_enabled": true`.
    pub fn async_enabled(self) -> bool {
        matches!(self, Self::Asgi)
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flavor {
    type Err = ParseFlavorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| s.eq_ignore_ascii_case(f.as_str()))
            .ok_or_else(|| ParseFlavorError {
                input: s.to_owned(),
            })
    }
}

/// The text given as a [`Flavor`] is neither `wsgi` nor `asgi`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown flavor `{input}`, expected `wsgi`, `asgi` or `wsgi-only`")]
pub struct ParseFlavorError {
    input: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_case_insensitively() {
        assert_eq!("wsgi".parse::<Flavor>(), Ok(Flavor::Wsgi));
        assert_eq!("ASGI".parse::<Flavor>(), Ok(Flavor::Asgi));
        assert_eq!("wsgi-only".parse::<Flavor>(), Ok(Flavor::WsgiOnly));
    }

    #[test]
    fn rejects_other_names_with_the_input_in_backticks() {
        let err = "uwsgi".parse::<Flavor>().expect_err("not a flavor");
        assert_eq!(
            err.to_string(),
            "unknown flavor `uwsgi`, expected `wsgi`, `asgi` or `wsgi-only`"
        );
    }

    #[test]
    fn display_round_trips_and_default_is_wsgi() {
        for flavor in Flavor::ALL {
            assert_eq!(flavor.to_string().parse::<Flavor>(), Ok(flavor));
        }
        assert_eq!(Flavor::default(), Flavor::Wsgi);
    }
}
