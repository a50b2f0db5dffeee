//! `raptr`: the repository core from a terminal (DESIGN §10).
//!
//! This binary only parses arguments, walks the files a user names, and prints;
//! validation and rendering are `raptr-formats`' and are exactly what the ingest
//! function runs.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use raptr_core::request::Action;

/// `println!` for this crate: output piped into `head` ends the command
/// quietly (status 141, as a shell reports SIGPIPE) once the reader has
/// gone, instead of the standard macro's panic.
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
        }
    }};
}

mod changes;
mod check;
mod import;
mod inventory;
mod keys;
mod output;
mod publish;
mod repo;
mod scan;
mod sort;

/// Publish Debian/APT repositories without servers.
#[derive(Debug, Parser)]
#[command(name = "raptr", version, about)]
struct Cli {
    /// Machine-readable JSON output instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The repository: a directory, or s3://BUCKET (endpoint and credentials
    /// from the standard AWS environment).
    #[arg(long, global = true, value_name = "DIR|s3://BUCKET")]
    repo: Option<String>,
    /// Errors from AWS carry the SDK's whole account after their one
    /// sentence.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate files, or the files of one folder, as one upload folder:
    /// what `upload` would answer, without storing anything (files that
    /// wait for a companion are pending); with --repo, also against the
    /// pool. Exit 0: nothing rejected; 1: something rejected.
    Check {
        /// .deb, .dsc, .changes, .buildinfo and source files, or one folder.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Component whose pool the files would go to.
        #[arg(long, default_value = "main")]
        component: String,
    },
    /// Print the Packages and Sources stanzas that would be published for these
    /// files (folders are searched recursively for .deb and .dsc files).
    Scan {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Component whose pool the files would go to.
        #[arg(long, default_value = "main")]
        component: String,
        /// Parallel workers (default: the number of CPUs).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Create a repository from a configuration document, or with the default
    /// layout (stable and testing, main, amd64 arm64 i386 source).
    Init {
        config: Option<PathBuf>,
        /// Print a configuration document to start from (for s3://BUCKET:
        /// its bucket and region, a signing key secret) and write nothing.
        #[arg(long, conflicts_with = "config")]
        example: bool,
    },
    /// Upload files (or the files of folders) into DISTRIBUTION/COMPONENT,
    /// sorted into bundles (one upload folder each), and ingest them: what
    /// `aws s3 cp` into incoming/ does. Exit 0: nothing rejected; 1:
    /// something rejected; 2: nothing uploaded (an unknown distribution, a
    /// file no bundle claims).
    Upload {
        /// Where to: DISTRIBUTION/COMPONENT, e.g. stable/main.
        target: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The upload folder's name (default: local-<time>-<pid>-<random>);
        /// with several bundles, ID-1, ID-2, ...
        #[arg(long)]
        upload_id: Option<String>,
    },
    /// Submit a request document (link, unlink, remove, purge, verify), or
    /// `-` to read it from standard input: what uploading it to the place
    /// under requests/ its body names does. Exit 0: accepted; 1: rejected.
    Request {
        /// A .json file, or - for standard input.
        request: PathBuf,
    },
    /// Publish a bundle version (or all versions) in a distribution: the
    /// `link` request, in one line. Exit 0: accepted; 1: rejected.
    Link {
        #[command(flatten)]
        what: changes::What,
        /// The distribution to publish in.
        #[arg(long, value_name = "DIST")]
        to: String,
    },
    /// Stop publishing a bundle version (or all versions) in a distribution:
    /// the `unlink` request, in one line.
    Unlink {
        #[command(flatten)]
        what: changes::What,
        /// The distribution to withdraw from.
        #[arg(long, value_name = "DIST")]
        from: String,
    },
    /// Unlink a bundle version (or all versions) everywhere and drop it from
    /// the pool's manifest; its files go at the first purge after the grace
    /// period: the `remove` request, in one line.
    Remove {
        #[command(flatten)]
        what: changes::What,
    },
    /// Freeze a distribution's link state as snapshot NAME (a date, a
    /// release number), published at the next publish as the suite
    /// DISTRIBUTION/_NAME with its own signed Release; prints the `deb`
    /// line that pins a machine to it. A snapshot never changes; its pool
    /// files stay while it exists. Exit 0: accepted; 1: rejected.
    Snapshot {
        distribution: String,
        name: String,
        /// Say what would be frozen; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The snapshots of a repository (or of one distribution): name, when
    /// taken, files, suite path.
    Snapshots { distribution: Option<String> },
    /// Delete a snapshot: its published files go after the grace period,
    /// the pool files only it referenced at the first purge after that.
    DeleteSnapshot {
        distribution: String,
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Put a distribution's link state back to a snapshot's, as one new
    /// generation (undo a bad promotion). With --dry-run, list what would
    /// be linked and unlinked.
    Restore {
        distribution: String,
        /// The snapshot.
        name: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply a retention policy to a whole distribution now: its own
    /// ("retention" in its layout entry), or the one given. With
    /// --dry-run, list the versions it would retire (to try a policy
    /// before turning it on).
    Retention {
        distribution: String,
        /// Keep the newest N versions of each package and architecture.
        #[arg(long, value_name = "N")]
        keep: Option<u32>,
        /// Retire versions uploaded more than D days ago (never the newest).
        #[arg(long, value_name = "D")]
        max_age_days: Option<u32>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import packages from another APT archive (http(s)://, file:, s3://)
    /// into a distribution: its Release checked against --keyring, every
    /// index against the Release, every file against its index while it is
    /// fetched; then ingested as uploads are (reports under
    /// reports/imports/). Run `raptr publish` after it. A second run with
    /// the same Release fetches nothing. Exit 0: all imported; 1: something
    /// (or the whole upstream) refused.
    Import {
        #[command(flatten)]
        args: import::Args,
    },
    /// Bring a whole published repository (aptly, reprepro, deb-s3, any
    /// APT archive with dists/ and pool/) into this one: every suite and
    /// component with all their versions and sources, each suite into the
    /// distribution of its name (or --map). Checked as `raptr import` checks;
    /// a summary says what was imported, skipped and refused. Run `raptr
    /// publish` after it. A second run fetches only what is new. Exit 0:
    /// everything imported; 1: something skipped or refused.
    Migrate {
        #[command(flatten)]
        args: import::MigrateArgs,
    },
    /// The mirrors the configuration declares ("mirrors"): `raptr mirror
    /// sync [NAME...]` imports from each what is new.
    Mirror {
        #[command(subcommand)]
        command: MirrorCommand,
    },
    /// List what distributions link: one line per bundle version and
    /// distribution (version as the pool names it, without an epoch).
    /// Exit 1 when --package matched nothing.
    List {
        /// DISTRIBUTION, DISTRIBUTION/COMPONENT, or a snapshot's suite
        /// DISTRIBUTION/_NAME (default: every distribution).
        place: Option<String>,
        /// Only this bundle or binary package.
        #[arg(long, value_name = "NAME")]
        package: Option<String>,
    },
    /// Every version of one bundle in the pool: its files, when and by whom
    /// they were uploaded, and which distributions link it.
    Show {
        /// The bundle (source package) name.
        bundle: String,
        /// One version (with or without its epoch).
        version: Option<String>,
    },
    /// Bundles and binary packages whose name contains PATTERN (or matches
    /// it, with * and ?), in every distribution. Exit 1 when none does.
    Search { pattern: String },
    /// Publish everything pending: a new signed generation on the repository
    /// and every replica. Exit 1 if a replica could not be brought up to date.
    Publish,
    /// Delete pool files no distribution has linked for the grace period.
    Purge {
        /// List what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every bucket against its signed Release and repair replicas
    /// from the repository. Exit 1 if a problem was left unrepaired.
    Verify {
        /// Report only; repair nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print a shell completion script: `raptr completions bash >
    /// /etc/bash_completion.d/raptr`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `raptr man > raptr.1; man ./raptr.1`;
    /// with --dir, write it and one page per subcommand (raptr-list.1,
    /// raptr-key-show.1, ...) there.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MirrorCommand {
    /// Bring every mirror (or those named) up to date: what `raptr import`
    /// does with each one's settings. Exit 1 if something was refused.
    Sync { names: Vec<String> },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new signing key pair: DIR/private.asc (secret, readable by
    /// its owner only), DIR/repo.asc and DIR/repo.gpg (public).
    Generate {
        /// The key's user id, e.g. "Example Repository <apt@example.com>".
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// ed25519 (small and fast; every apt since Debian 9 verifies it),
        /// rsa3072 or rsa4096.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
    },
    /// Print what a repository signs with (--repo R: fingerprints,
    /// algorithms, expiry, and which files of the repository and of each
    /// replica carry each key), or check key files before configuring
    /// them (exit 1 if one would be refused).
    Show {
        /// Secret key files (armoured or binary, as GnuPG exports them).
        files: Vec<PathBuf>,
        /// A file whose first line is the passphrase of protected keys.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

/// Exit status for usage and environment errors (a path that does not exist, a
/// file that cannot be read): nothing was judged.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error under --json is a JSON document too (help and
        // --version stay text).
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--json") => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first);
            output::print(&output::error(&format!(
                "{message} (raptr --help lists the commands and their arguments)"
            )));
            return ExitCode::from(USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
    raptr_aws::set_error_detail(cli.verbose);
    let result = match cli.command {
        Command::Check { paths, component } => {
            check::run(&paths, &component, cli.repo.as_deref(), cli.json)
        }
        Command::Scan {
            paths,
            component,
            jobs,
        } => scan::run(&paths, &component, jobs, cli.json),
        Command::Init { config, example } => with_repo(&cli.repo, |r| {
            repo::init(r, config.as_deref(), example, cli.json)
        }),
        Command::Upload {
            target,
            paths,
            upload_id,
        } => with_repo(&cli.repo, |r| {
            repo::upload(r, &target, &paths, upload_id.as_deref(), cli.json)
        }),
        Command::Request { request } => {
            with_repo(&cli.repo, |r| repo::request(r, &request, cli.json))
        }
        Command::Link { what, to } => with_repo(&cli.repo, |r| {
            changes::run(r, Action::Link, &what, Some(&to), cli.json)
        }),
        Command::Unlink { what, from } => with_repo(&cli.repo, |r| {
            changes::run(r, Action::Unlink, &what, Some(&from), cli.json)
        }),
        Command::Remove { what } => with_repo(&cli.repo, |r| {
            changes::run(r, Action::Remove, &what, None, cli.json)
        }),
        Command::Snapshot {
            distribution,
            name,
            dry_run,
        } => snapshot_request(
            &cli.repo,
            cli.json,
            Action::Snapshot,
            &distribution,
            &name,
            dry_run,
        ),
        Command::DeleteSnapshot {
            distribution,
            name,
            dry_run,
        } => snapshot_request(
            &cli.repo,
            cli.json,
            Action::DeleteSnapshot,
            &distribution,
            &name,
            dry_run,
        ),
        Command::Restore {
            distribution,
            name,
            dry_run,
        } => snapshot_request(
            &cli.repo,
            cli.json,
            Action::Restore,
            &distribution,
            &name,
            dry_run,
        ),
        Command::Retention {
            distribution,
            keep,
            max_age_days,
            dry_run,
        } => with_repo(&cli.repo, |r| {
            let what = changes::Wide {
                keep,
                max_age_days,
                dry_run,
                ..Default::default()
            };
            changes::wide(r, Action::Retain, &distribution, &what, cli.json)
        }),
        Command::Mirror {
            command: MirrorCommand::Sync { names },
        } => with_repo(&cli.repo, |r| import::sync(r, &names, cli.json)),
        Command::Import { args } => with_repo(&cli.repo, |r| import::run(r, &args, cli.json)),
        Command::Migrate { args } => with_repo(&cli.repo, |r| import::migrate(r, &args, cli.json)),
        Command::Snapshots { distribution } => with_repo(&cli.repo, |r| {
            inventory::snapshots(r, distribution.as_deref(), cli.json)
        }),
        Command::List { place, package } => with_repo(&cli.repo, |r| {
            inventory::list(r, place.as_deref(), package.as_deref(), cli.json)
        }),
        Command::Show { bundle, version } => with_repo(&cli.repo, |r| {
            inventory::show(r, &bundle, version.as_deref(), cli.json)
        }),
        Command::Search { pattern } => {
            with_repo(&cli.repo, |r| inventory::search(r, &pattern, cli.json))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "raptr", &mut io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => clap_mangen::Man::new(Cli::command())
            .render(&mut io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| CliError(format!("cannot write the manual page: {e}"))),
        Command::Man { dir: Some(dir) } => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| io_error(&dir, e)),
        Command::Publish => with_repo(&cli.repo, |r| publish::publish(r, cli.json)),
        Command::Purge { dry_run } => {
            with_repo(&cli.repo, |r| publish::purge(r, dry_run, cli.json))
        }
        Command::Verify { dry_run } => {
            with_repo(&cli.repo, |r| publish::verify(r, dry_run, cli.json))
        }
        Command::Key {
            command:
                KeyCommand::Generate {
                    name,
                    out,
                    algorithm,
                },
        } => keys::generate(&name, &out, &algorithm, cli.json),
        Command::Key {
            command:
                KeyCommand::Show {
                    files,
                    passphrase_file,
                },
        } => keys::show(
            cli.repo.as_deref(),
            &files,
            passphrase_file.as_deref(),
            cli.json,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) if cli.json => {
            output::print(&output::error(&e.0));
            ExitCode::from(USAGE)
        }
        Err(e) => {
            eprintln!("raptr: {e}");
            ExitCode::from(USAGE)
        }
    }
}

/// `snapshot`, `delete-snapshot` and `restore`: a request naming a
/// distribution's snapshot.
fn snapshot_request(
    repo: &Option<String>,
    json: bool,
    action: Action,
    distribution: &str,
    name: &str,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    with_repo(repo, |r| {
        let what = changes::Wide {
            snapshot: Some(name),
            dry_run,
            ..Default::default()
        };
        changes::wide(r, action, distribution, &what, json)
    })
}

fn with_repo(
    repo: &Option<String>,
    run: impl FnOnce(&str) -> Result<ExitCode, CliError>,
) -> Result<ExitCode, CliError> {
    match repo.as_deref() {
        Some(r) if !r.is_empty() => run(r),
        _ => Err(CliError(
            "this command needs --repo DIR or --repo s3://BUCKET".into(),
        )),
    }
}

/// A user-facing error: one sentence naming the path and the problem.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn io_error(path: &Path, e: io::Error) -> CliError {
    CliError(format!("{}: {e}", path.display()))
}

/// Reads a small file the user names (a configuration, a request, a key),
/// refusing one larger than `limit` without reading past it.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(CliError(format!(
            "{}: larger than the {limit} bytes allowed",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The files `check` treats as one folder: every regular file of a directory
/// (not recursing), or the files named. All must sit in one directory, because
/// a bundle's files refer to each other by plain name.
pub(crate) fn bundle_files(paths: &[PathBuf]) -> Result<(PathBuf, Vec<String>), CliError> {
    let mut dir: Option<PathBuf> = None;
    let mut names = Vec::new();
    let mut same_dir = |d: PathBuf, path: &Path| -> Result<(), CliError> {
        match &dir {
            Some(existing) if existing != &d => Err(CliError(format!(
                "{}: not in {}; a bundle's files must be in one folder",
                path.display(),
                existing.display()
            ))),
            Some(_) => Ok(()),
            None => {
                dir = Some(d);
                Ok(())
            }
        }
    };
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
        if meta.is_dir() {
            same_dir(path.clone(), path)?;
            let entries = std::fs::read_dir(path).map_err(|e| io_error(path, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error(path, e))?;
                let ft = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
                if ft.is_file() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        } else if meta.is_file() {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            same_dir(parent, path)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| CliError(format!("{}: not a file name", path.display())))?;
            names.push(name);
        } else {
            return Err(CliError(format!(
                "{}: not a regular file or folder",
                path.display()
            )));
        }
    }
    let dir = dir.ok_or_else(|| CliError("no files given".into()))?;
    Ok((dir, names))
}

/// Opens `dir/name` for the bundle checker.
pub fn opener(dir: &Path) -> impl FnMut(&str) -> io::Result<Box<dyn Read>> + '_ {
    move |name| {
        let file = File::open(dir.join(name))?;
        Ok(Box::new(io::BufReader::with_capacity(64 << 10, file)) as Box<dyn Read>)
    }
}
