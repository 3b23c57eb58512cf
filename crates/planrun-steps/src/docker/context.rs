//! A build context as the engine takes it: the directory packed into a tar
//! archive in memory, without what its `.dockerignore` leaves out.
//!
//! The ignore file's rules as the engine reads them: one pattern a line,
//! `#` comments, `*` and `?` within a path segment, `**` across segments,
//! a leading `!` keeping what an earlier line left out, the last matching
//! line deciding; a directory left out takes its contents with it unless a
//! later `!` line keeps something under it. The Dockerfile and the ignore
//! file itself are always sent.

use std::path::{Path, PathBuf};

use regex::Regex;

/// The most a context may weigh once packed.
pub(super) const MAX_CONTEXT: u64 = 1 << 30;

/// One line of a `.dockerignore`.
struct Rule {
    pattern: Regex,
    keep: bool,
}

/// The rules of a `.dockerignore`.
pub(super) struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// The rules of `text`; a pattern that does not read is an error naming
    /// its line.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keep, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
            let regex = Regex::new(&glob_regex(pattern))
                .map_err(|e| format!("line {} of .dockerignore does not read: {e}", n + 1))?;
            rules.push(Rule {
                pattern: regex,
                keep,
            });
        }
        Ok(Self { rules })
    }

    /// No rules.
    pub(super) fn none() -> Self {
        Self { rules: Vec::new() }
    }

    /// Whether `path` (relative, `/`-separated) is left out.
    pub(super) fn ignores(&self, path: &str) -> bool {
        let mut ignored = false;
        for rule in &self.rules {
            // a rule matches a path or any directory above it
            let matches = rule.pattern.is_match(path)
                || path
                    .match_indices('/')
                    .any(|(at, _)| rule.pattern.is_match(&path[..at]));
            if matches {
                ignored = !rule.keep;
            }
        }
        ignored
    }

    /// Whether a `!` rule could keep something under the directory `dir`.
    fn may_keep_under(&self, dir: &str) -> bool {
        self.rules.iter().any(|r| r.keep) && !dir.is_empty()
    }
}

/// A glob as an anchored regular expression.
fn glob_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                // `**/` is any number of directories, `**` anything
                if chars.get(i + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                // a class is passed through up to its end
                let end = chars[i..].iter().position(|&c| c == ']');
                match end {
                    Some(len) => {
                        let class: String = chars[i..=i + len].iter().collect();
                        out.push_str(&class.replacen("[!", "[^", 1));
                        i += len + 1;
                        continue;
                    }
                    None => out.push_str("\\["),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push('$');
    out
}

/// The context directory `dir` packed as a tar archive, without what its
/// `.dockerignore` leaves out; `dockerfile` (relative to `dir`) is always
/// in it.
pub(super) fn pack(dir: &Path, dockerfile: &str) -> Result<Vec<u8>, String> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::none(),
        Err(e) => return Err(format!("cannot read `{}`: {e}", dir.join(".dockerignore").display())),
    };
    let mut files = Vec::new();
    walk(dir, dir, &ignore, dockerfile, &mut files)?;
    // directories are entries too: an empty one (`/tmp`) must exist in
    // the image
    files.sort();
    let mut total: u64 = 0;
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for (path, name) in files {
        total += std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
        if total > MAX_CONTEXT {
            return Err(format!(
                "the build context `{}` passes {} MiB; leave out what the build does not need with a `.dockerignore`",
                dir.display(),
                MAX_CONTEXT >> 20
            ));
        }
        let packed = if path.is_dir() && !path.is_symlink() {
            archive.append_dir(&name, &path)
        } else {
            archive.append_path_with_name(&path, &name)
        };
        packed.map_err(|e| format!("cannot pack `{}`: {e}", path.display()))?;
    }
    archive
        .into_inner()
        .map_err(|e| format!("cannot pack the build context: {e}"))
}

/// Collects the files under `at` that the context keeps, each with its
/// name in the archive.
fn walk(
    root: &Path,
    at: &Path,
    ignore: &Ignore,
    dockerfile: &str,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(at).map_err(|e| format!("cannot read `{}`: {e}", at.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read `{}`: {e}", at.display()))?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let name = rel.to_string_lossy().replace('\\', "/");
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let always = name == dockerfile || name == ".dockerignore";
        if kind.is_dir() {
            let ignored = ignore.ignores(&name);
            if ignored && !ignore.may_keep_under(&name) {
                continue;
            }
            if !ignored {
                out.push((path.clone(), name));
            }
            walk(root, &path, ignore, dockerfile, out)?;
        } else if always || !ignore.ignores(&name) {
            out.push((path, name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules_read_as_the_engine_reads_them() {
        let ignore = Ignore::parse(
            "# comment\n*.log\ntarget\n!target/keep.txt\n**/secret*\n/build/\ndocs/?.md\n",
        )
        .unwrap();
        assert!(ignore.ignores("a.log"));
        assert!(!ignore.ignores("dir/a.log"), "`*` stays within a segment");
        assert!(ignore.ignores("target/debug/x"));
        assert!(!ignore.ignores("target/keep.txt"));
        assert!(ignore.ignores("deep/down/secret.key"));
        assert!(ignore.ignores("secret.key"));
        assert!(ignore.ignores("build/out"));
        assert!(ignore.ignores("docs/a.md"));
        assert!(!ignore.ignores("docs/ab.md"));
        assert!(!ignore.ignores("src/main.rs"));
    }

    #[test]
    fn a_context_leaves_out_what_its_ignore_file_says() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\nDockerfile\ncache\n").unwrap();
        std::fs::write(dir.path().join("app.bin"), "x").unwrap();
        std::fs::write(dir.path().join("debug.log"), "x").unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        std::fs::write(dir.path().join("cache/big"), "x").unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let packed = pack(dir.path(), "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(packed.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.bin", "empty"]);
    }
}
