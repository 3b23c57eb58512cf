//! Turns the paths on the command line into spec files: files as given,
//! directories walked for `.toml`, `.yaml` and `.yml` (sorted, `planrun.toml`
//! excluded, hidden directories skipped). A file or directory whose name
//! starts with `_` holds parts that specs include (`_shared/login.toml`) or a
//! directory's setup and teardown (`_setup.toml`, found through its
//! `planrun.toml`, not here), not specs: a walk skips it; named on the
//! command line, it runs.

use std::fs;
use std::path::{Path, PathBuf};

use planrun_spec::source::Format;

/// Spec files under `paths`, in a stable order, or an error naming the path.
pub(crate) fn spec_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut out).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        } else if path.is_file() {
            if Format::from_path(path).is_none() {
                return Err(format!(
                    "`{}` is not a spec file (spec files end in .toml, .yaml or .yml)",
                    path.display()
                ));
            }
            out.push(path.clone());
        } else {
            return Err(format!("`{}` does not exist", path.display()));
        }
    }
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::path);
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if Format::from_path(&path).is_some() && name != "planrun.toml" {
            out.push(path);
        }
    }
    Ok(())
}
