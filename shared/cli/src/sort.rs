//! Sorting the files of one `raptr upload` into bundles, one upload folder
//! each: a `.deb`, `.dsc`, `.changes` or `.buildinfo` names its bundle
//! (source and version); a source tarball or other file goes with the
//! `.dsc` or `.changes` that lists it, else with the one bundle whose
//! source name starts its file name, else with the only bundle there is.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use raptr_formats::bundle::{analyze_file, Kind, Parsed};
use raptr_formats::deb::Limits;

use crate::CliError;

/// One upload folder's files; `bundle` is `None` when no file named one.
#[derive(Debug)]
pub struct Group {
    pub bundle: Option<(String, String)>,
    pub files: Vec<(String, PathBuf)>,
}

struct Seen {
    name: String,
    path: PathBuf,
    identity: Option<(String, String)>,
    lists: Vec<String>,
    /// A package or description that failed to parse: rejected wherever
    /// it goes.
    broken: bool,
}

pub fn sort(files: Vec<(String, PathBuf)>) -> Result<Vec<Group>, CliError> {
    if files.len() < 2 {
        return Ok(vec![Group {
            bundle: None,
            files,
        }]);
    }
    let limits = Limits::default();
    let mut seen = Vec::with_capacity(files.len());
    for (name, path) in files {
        let mut open = |_: &str| -> io::Result<Box<dyn Read>> {
            Ok(Box::new(io::BufReader::with_capacity(
                64 << 10,
                File::open(&path)?,
            )))
        };
        let r = analyze_file(&name, &mut open, &limits).map_err(|e| crate::io_error(&path, e))?;
        let lists = match &r.parsed {
            Parsed::Dsc(d) => d.files.iter().map(|f| f.name.clone()).collect(),
            Parsed::Changes(c) => c.files.iter().map(|f| f.name.clone()).collect(),
            _ => Vec::new(),
        };
        let identity = r.source.clone().zip(r.source_version.clone());
        let broken = identity.is_none() && !matches!(r.kind, Kind::Source | Kind::Unknown);
        seen.push(Seen {
            name,
            path,
            identity,
            lists,
            broken,
        });
    }
    let mut groups: Vec<Group> = Vec::new();
    let index_of = |groups: &Vec<Group>, id: &(String, String)| {
        groups.iter().position(|g| g.bundle.as_ref() == Some(id))
    };
    for s in &seen {
        if let Some(id) = &s.identity {
            if index_of(&groups, id).is_none() {
                groups.push(Group {
                    bundle: Some(id.clone()),
                    files: Vec::new(),
                });
            }
        }
    }
    if groups.len() < 2 {
        let files = seen.into_iter().map(|s| (s.name, s.path)).collect();
        let bundle = groups.pop().and_then(|g| g.bundle);
        return Ok(vec![Group { bundle, files }]);
    }
    for s in &seen {
        let target = match &s.identity {
            Some(id) => index_of(&groups, id),
            None => claimed_by(&seen, &groups, &s.name),
        };
        let target = match target {
            None if s.broken => {
                // A folder of its own: rejected there, with its report,
                // and no other bundle made all-or-nothing by it.
                groups.push(Group {
                    bundle: None,
                    files: Vec::new(),
                });
                Some(groups.len() - 1)
            }
            t => t,
        };
        let Some(i) = target else {
            let names: Vec<String> = groups
                .iter()
                .filter_map(|g| g.bundle.as_ref().map(|(b, v)| format!("{b} {v}")))
                .collect();
            return Err(CliError(format!(
                "{}: belongs to none of the bundles given ({}): no .dsc or .changes lists it and its name does not start with one of their source names; upload it in a command of its own",
                s.path.display(),
                names.join(", ")
            )));
        };
        groups[i].files.push((s.name.clone(), s.path.clone()));
    }
    Ok(groups)
}

/// The group of a file that names no bundle itself.
fn claimed_by(seen: &[Seen], groups: &[Group], name: &str) -> Option<usize> {
    let listing = seen
        .iter()
        .filter(|s| s.lists.iter().any(|l| l == name))
        .find_map(|s| s.identity.as_ref());
    if let Some(id) = listing {
        return groups.iter().position(|g| g.bundle.as_ref() == Some(id));
    }
    let by_name: Vec<usize> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            g.bundle
                .as_ref()
                .is_some_and(|(b, _)| name.starts_with(&format!("{b}_")))
        })
        .map(|(i, _)| i)
        .collect();
    match by_name[..] {
        [only] => Some(only),
        _ => None,
    }
}
