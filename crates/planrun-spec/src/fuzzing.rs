//! Entry points for fuzzing and property tests, not part of the API: each
//! takes arbitrary input through the functions `planrun validate` calls and
//! panics only when an invariant breaks. The cargo-fuzz targets in `fuzz/`
//! and the property tests below call the same functions, so a finding of
//! either replays in the other.
//!
//! Built for this crate's tests and with the `fuzzing` feature.

use std::path::Path;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::error::{Diagnostic, Diagnostics};
use crate::lower::lower_dir_config;
use crate::model::{DirConfig, Overrides};
use crate::parse::parse_source;
use crate::plan::{Plan, load_spec, plan};
use crate::source::{Format, SourceFile};

/// The directory a fuzzed spec claims to live in: it does not exist, so an
/// `include` is a "does not exist" problem rather than a read of whatever
/// the fuzzer names.
const NOWHERE: &str = "/nonexistent-planrun-fuzz";

/// Loads and plans `data` as a spec of `format`, as `planrun validate`
/// does, and the same text as a `planrun.toml`; checks every diagnostic
/// (located in its file, renders) and every plan (an order of all steps
/// that respects their needs).
pub fn spec(data: &[u8], format: Format) {
    let text = String::from_utf8_lossy(data);
    let name = match format {
        Format::Toml => "spec.toml",
        Format::Yaml => "spec.yaml",
    };
    let source = Arc::new(SourceFile::new(
        Path::new(NOWHERE).join(name),
        text.as_ref(),
        format,
    ));

    if format == Format::Toml {
        crate::parse::check_read_in_steps(&text);
    }
    let dir = if format == Format::Toml {
        let config = Arc::new(SourceFile::new(
            Path::new(NOWHERE).join("planrun.toml"),
            text.as_ref(),
            Format::Toml,
        ));
        match parse_source(&config) {
            Ok(value) => match lower_dir_config(&config, &value) {
                Ok(dir) => Some(dir),
                Err(diags) => {
                    check_diagnostics(&diags, &config);
                    None
                }
            },
            Err(d) => {
                check_diagnostics(&Diagnostics(vec![d.with_source(&config)]), &config);
                None
            }
        }
    } else {
        None
    };

    let spec = match load_spec(&source) {
        Ok(spec) => spec,
        Err(diags) => {
            assert!(!diags.is_empty(), "a spec that does not load says why");
            check_diagnostics(&diags, &source);
            return;
        }
    };
    check_diagnostics(&spec.problems, &source);
    let mut dirs = vec![Arc::new(DirConfig::default())];
    dirs.extend(dir.map(Arc::new));
    for dir in dirs {
        match plan(spec.clone(), dir, &Overrides::default(), &[]) {
            Ok(planned) => check_plan(&planned),
            Err(diags) => {
                assert!(!diags.is_empty(), "a spec that does not plan says why");
                check_diagnostics(&diags, &source);
            }
        }
    }
}

/// Every diagnostic points into its file (in bounds, on character
/// boundaries) and renders as the command line renders it.
pub fn check_diagnostics(diags: &Diagnostics, source: &Arc<SourceFile>) {
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    for d in diags {
        let text = &d.source.as_ref().unwrap_or(source).text;
        check_span(d, &d.span, text);
        for (span, _) in &d.related {
            check_span(d, span, text);
        }
        assert!(!d.message.is_empty(), "a diagnostic says what is wrong");
        let mut out = String::new();
        handler
            .render_report(&mut out, d)
            .expect("a diagnostic renders");
    }
}

fn check_span(d: &Diagnostic, span: &std::ops::Range<usize>, text: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} of `{}` is outside its file of {} bytes",
        d.message,
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} of `{}` cuts a character",
        d.message
    );
}

/// The order holds every step once, each after the steps it needs.
fn check_plan(planned: &Plan) {
    let n = planned.spec.steps.len();
    assert_eq!(planned.deps.len(), n, "needs of every step");
    assert_eq!(planned.order.len(), n, "every step is ordered");
    let mut position = vec![usize::MAX; n];
    for (at, &step) in planned.order.iter().enumerate() {
        assert!(
            step < n && position[step] == usize::MAX,
            "steps are ordered once"
        );
        position[step] = at;
    }
    for (step, deps) in planned.deps.iter().enumerate() {
        for &d in deps {
            assert!(d < n, "a need names a step");
            assert!(position[d] < position[step], "a step runs after its needs");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The fuzz targets as property tests, for a bounded number of cases:
    //! the repository's specs, mutated (tokens of the languages inserted,
    //! spans deleted or repeated, bytes replaced), and the inputs that once
    //! broke a target (`fuzz/regressions/`).

    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The spec files of the repository, with their formats.
    fn seeds() -> Vec<(Vec<u8>, Format)> {
        fn walk(dir: &Path, out: &mut Vec<(Vec<u8>, Format)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            for path in paths {
                if path.is_dir() {
                    walk(&path, out);
                } else if let Some(format) = Format::from_path(&path) {
                    out.push((std::fs::read(&path).expect("readable"), format));
                }
            }
        }
        let mut out = Vec::new();
        for dir in ["specs", "examples", "crates/planrun/tests/plans"] {
            walk(&root().join(dir), &mut out);
        }
        assert!(out.len() > 20, "the repository's specs are found");
        out
    }

    /// Pieces of both languages and of planrun's, to insert.
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        "[[steps]]\n",
        "=",
        ":",
        ",",
        "\"",
        "'",
        "\n",
        "\r\n",
        "- ",
        "  ",
        "{{",
        "}}",
        "{%",
        "%}",
        "$",
        "$..",
        "[?@",
        "&a ",
        "*a",
        "<<: ",
        "!!",
        "#",
        "\\u0000",
        "needs = [\"",
        "include = [\"x.toml\"]\n",
        "repeat = ",
        "retry = ",
        "expect.",
        "capture.",
        "that",
        "matches",
        "eq",
        "len",
        "all",
        "any",
        "not",
        "type",
        "id = \"",
        "wait = \"1ms\"\n",
        "http = { get = \"",
        "}}\"",
        "1e999",
        "-0",
        "99999999999999999999",
        "\u{feff}",
        "é",
        "\0",
    ];

    /// One edit of an input: what, where (a fraction of the length), and
    /// with which token or byte.
    #[derive(Debug, Clone)]
    pub(crate) enum Edit {
        Insert(u16, usize),
        Delete(u16, u8),
        Repeat(u16, u8, u8),
        Replace(u16, u8),
        Truncate(u16),
    }

    pub(crate) fn edits() -> impl Strategy<Value = Vec<Edit>> {
        let edit = prop_oneof![
            4 => (any::<u16>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
            2 => (any::<u16>(), any::<u8>()).prop_map(|(at, n)| Edit::Delete(at, n)),
            1 => (any::<u16>(), any::<u8>(), 1..16u8).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
            2 => (any::<u16>(), any::<u8>()).prop_map(|(at, b)| Edit::Replace(at, b)),
            1 => any::<u16>().prop_map(Edit::Truncate),
        ];
        proptest::collection::vec(edit, 1..8)
    }

    pub(crate) fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        let at = |data: &Vec<u8>, fraction: u16| data.len() * usize::from(fraction) / 65_536;
        for edit in edits {
            match *edit {
                Edit::Insert(f, token) => {
                    let i = at(&data, f);
                    data.splice(i..i, TOKENS[token].bytes());
                }
                Edit::Delete(f, n) => {
                    let i = at(&data, f);
                    let end = (i + usize::from(n)).min(data.len());
                    data.drain(i..end);
                }
                Edit::Repeat(f, n, times) => {
                    let i = at(&data, f);
                    let end = (i + usize::from(n)).min(data.len());
                    let piece = data[i..end].to_vec();
                    for _ in 0..times {
                        data.splice(end..end, piece.iter().copied());
                    }
                }
                Edit::Replace(f, b) => {
                    let i = at(&data, f);
                    if let Some(slot) = data.get_mut(i) {
                        *slot = b;
                    }
                }
                Edit::Truncate(f) => {
                    let i = at(&data, f);
                    data.truncate(i);
                }
            }
        }
        data
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn mutated_specs_load_and_plan_or_say_why(seed in any::<prop::sample::Index>(), edits in edits()) {
            let seeds = seeds_cached();
            let (text, format) = &seeds[seed.index(seeds.len())];
            let (data, format) = (apply(text.clone(), &edits), *format);
            with_main_stack(move || spec(&data, format));
        }

        #[test]
        fn any_bytes_load_and_plan_or_say_why(data in proptest::collection::vec(any::<u8>(), 0..256), yaml in any::<bool>()) {
            with_main_stack(move || spec(&data, if yaml { Format::Yaml } else { Format::Toml }));
        }
    }

    /// Runs `f` on a thread with the stack of a main thread (8 MiB): YAML
    /// nested to the reader's limit takes more than a test thread's 2 MiB
    /// in a debug build.
    pub(crate) fn with_main_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(f)
            .expect("a thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    fn seeds_cached() -> &'static [(Vec<u8>, Format)] {
        static SEEDS: std::sync::OnceLock<Vec<(Vec<u8>, Format)>> = std::sync::OnceLock::new();
        SEEDS.get_or_init(seeds)
    }

    /// The inputs kept in `fuzz/regressions/TARGET/` (each once broke it).
    pub(crate) fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = root().join("fuzz/regressions").join(target);
        let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| {
                        let path = e.ok()?.path();
                        let data = std::fs::read(&path).ok()?;
                        Some((path, data))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn the_inputs_that_once_broke_the_spec_targets() {
        let mut inputs: Vec<_> = regressions("spec_toml")
            .into_iter()
            .map(|(path, data)| (path, data, Format::Toml))
            .collect();
        inputs.extend(
            regressions("spec_yaml")
                .into_iter()
                .map(|(path, data)| (path, data, Format::Yaml)),
        );
        assert!(!inputs.is_empty(), "inputs in fuzz/regressions/spec_*");
        for (path, data, format) in inputs {
            eprintln!("{}", path.display());
            with_main_stack(move || spec(&data, format));
        }
    }
}
