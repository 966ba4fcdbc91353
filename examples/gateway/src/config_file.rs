//! `--config FILE`: a TOML file that can say everything the flags say.
//!
//! Keys are the long flags without their dashes (`fhir-addr = "0.0.0.0:8080"`,
//! `max-body = 1048576`, `mllp-commit-blocks = true`, `dicom-allow = ["MOD1@10.0.0.5"]`);
//! values are TOML strings, integers, booleans or, for repeatable flags, arrays. Precedence:
//! a flag on the command line, then its environment variable, then the file, then the
//! default. An unknown key, a value of the wrong kind or one the flag would refuse is an
//! error naming the file, the line and the key; nothing starts.

use clap::{ArgAction, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

use crate::Config;

/// Parses the command line (and environment), reading `--config FILE` when given.
pub fn load_from<I, T>(args: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = Config::command();
    let matches = cmd.try_get_matches_from_mut(args.clone())?;
    let Some(path) = matches.get_one::<std::path::PathBuf>("config").cloned() else {
        return Config::from_arg_matches(&matches);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        cmd.error(
            clap::error::ErrorKind::Io,
            format!("{}: {e}", path.display()),
        )
    })?;
    let (extra, lines) = file_args(&cmd, &matches, &path, &text)
        .map_err(|e| cmd.error(clap::error::ErrorKind::InvalidValue, e))?;
    // The file's values go in as flags, before the command line's (which never repeat them:
    // a key set on the command line or in the environment is skipped).
    let mut argv = Vec::with_capacity(args.len() + extra.len());
    argv.extend(args.first().cloned());
    argv.extend(extra);
    argv.extend(args.into_iter().skip(1));
    let mut cmd = Config::command();
    let matches = cmd.try_get_matches_from_mut(argv).map_err(|e| {
        // A value the flag refuses: name the file's line when the value came from it.
        let flag = match e.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(s)) => {
                s.split_whitespace().next().map(str::to_owned)
            }
            _ => None,
        };
        match flag
            .as_deref()
            .and_then(|f| f.strip_prefix("--"))
            .and_then(|n| lines.get(n).map(|l| (n, *l)))
        {
            Some((name, line)) => {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_owned();
                cmd.error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("{}:{line}: {name}: {first}", path.display()),
                )
            }
            None => e,
        }
    })?;
    Config::from_arg_matches(&matches)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The flags the file stands for, and the line of each key.
fn file_args(
    cmd: &clap::Command,
    matches: &clap::ArgMatches,
    path: &Path,
    text: &str,
) -> Result<(Vec<OsString>, std::collections::HashMap<String, usize>), String> {
    use toml::Spanned;
    type Doc = std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>;
    let doc: Doc = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        format!("{}:{line}: {}", path.display(), e.message())
    })?;
    let mut out = Vec::new();
    let mut lines = std::collections::HashMap::new();
    for (key, value) in &doc {
        let line = line_of(text, key.span().start);
        let at = |msg: String| format!("{}:{line}: {}: {msg}", path.display(), key.get_ref());
        let name = key.get_ref().as_str();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name) && !matches!(name, "config" | "help" | "version"))
            .ok_or_else(|| {
                at("unknown key (keys are the long flags, e.g. fhir-addr; see --help)".into())
            })?;
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{name}");
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(at(format!(
                    "a {} is not a value of this flag",
                    other.type_str()
                ))),
            }
        };
        lines.insert(name.to_owned(), line);
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => match value.get_ref() {
                toml::Value::Boolean(true) => out.push(flag.into()),
                toml::Value::Boolean(false) => {}
                other => {
                    return Err(at(format!(
                        "expected true or false, found a {}",
                        other.type_str()
                    )));
                }
            },
            ArgAction::Append => {
                let items: Vec<&toml::Value> = match value.get_ref() {
                    toml::Value::Array(a) => a.iter().collect(),
                    v => vec![v],
                };
                for v in items {
                    let s = scalar(v)?;
                    out.push(format!("{flag}={s}").into());
                }
            }
            _ => {
                let s = scalar(value.get_ref())?;
                out.push(format!("{flag}={s}").into());
            }
        }
    }
    Ok((out, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "xenrad-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn file_values_flags_override_and_errors_name_the_line() {
        let p = write(
            "# gateway\nfhir-addr = \"127.0.0.1:18080\"\nmax-body = 1024\nmllp-commit-blocks = true\n\
             dicom-allow = [\"MOD1@127.0.0.1\", \"MOD2\"]\nae-title = \"FROMFILE\"\n",
        );
        let c = load_from([
            "gw",
            "--config",
            p.to_str().unwrap(),
            "--ae-title",
            "FROMFLAG",
        ])
        .unwrap();
        assert_eq!(c.fhir_addr.to_string(), "127.0.0.1:18080");
        assert_eq!(c.max_body, 1024);
        assert!(c.mllp_commit_blocks);
        assert_eq!(c.dicom_allow, ["MOD1@127.0.0.1", "MOD2"]);
        assert_eq!(c.ae_title, "FROMFLAG", "the flag overrides the file");
        // A repeatable flag on the command line replaces the file's list.
        let c = load_from(["gw", "--config", p.to_str().unwrap(), "--dicom-allow", "X"]).unwrap();
        assert_eq!(c.dicom_allow, ["X"]);
        std::fs::remove_file(&p).unwrap();

        for (text, want) in [
            (
                "max-body = 1\nfhir_addr = \"x\"\n",
                ":2: fhir_addr: unknown key",
            ),
            (
                "\n\nmax-body = \"lots\"\n",
                ":3: max-body: invalid value 'lots'",
            ),
            (
                "mllp-commit-blocks = 1\n",
                ":1: mllp-commit-blocks: expected true or false",
            ),
            (
                "fhir-addr = [1, 2]\n",
                ":1: fhir-addr: a array is not a value",
            ),
            ("max-body = \n", ":1: "),
            ("config = \"other.toml\"\n", ":1: config: unknown key"),
        ] {
            let p = write(text);
            let e = load_from(["gw", "--config", p.to_str().unwrap()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            std::fs::remove_file(&p).unwrap();
        }
    }
}
