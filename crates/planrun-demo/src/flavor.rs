//! Which half of the seed's hybrid deployment a demo server impersonates.
//!
//! Owns only the name and its parsing; the differences in behaviour live in the
//! handlers that read it.

use std::fmt;
use std::str::FromStr;

/// The container type a [`DemoServer`](crate::DemoServer) pretends to be.
///
/// The flavor shows in `GET /health/`, in `served_by` of `GET /api/auth/me/` and in
/// the `X-Served-By` header of every response. Both flavors serve every endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// The synchronous Django container (gunicorn in the seed plan).
    #[default]
    Wsgi,
    /// The asynchronous container (channels / daphne in the seed plan).
    Asgi,
}

impl Flavor {
    /// The lowercase name: `wsgi` or `asgi`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wsgi => "wsgi",
            Self::Asgi => "asgi",
        }
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
        if s.eq_ignore_ascii_case("wsgi") {
            Ok(Self::Wsgi)
        } else if s.eq_ignore_ascii_case("asgi") {
            Ok(Self::Asgi)
        } else {
            Err(ParseFlavorError {
                input: s.to_owned(),
            })
        }
    }
}

/// The text given as a [`Flavor`] is neither `wsgi` nor `asgi`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown flavor `{input}`, expected `wsgi` or `asgi`")]
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
    }

    #[test]
    fn rejects_other_names_with_the_input_in_backticks() {
        let err = "uwsgi".parse::<Flavor>().expect_err("not a flavor");
        assert_eq!(
            err.to_string(),
            "unknown flavor `uwsgi`, expected `wsgi` or `asgi`"
        );
    }

    #[test]
    fn display_round_trips_and_default_is_wsgi() {
        for flavor in [Flavor::Wsgi, Flavor::Asgi] {
            assert_eq!(flavor.to_string().parse::<Flavor>(), Ok(flavor));
        }
        assert_eq!(Flavor::default(), Flavor::Wsgi);
    }
}
