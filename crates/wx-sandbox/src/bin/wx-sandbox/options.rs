//! The binary's flags and config file (JSON).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Arg, ArgAction, Command, value_parser};
use serde::Deserialize;
use wx_sandbox::{AppConfig, Consent, UserProfile};

/// The default port (`--port 0` picks a free one).
const DEFAULT_PORT: u16 = 8642;

/// What the server runs with.
pub(crate) struct Options {
    pub(crate) listen: SocketAddr,
    pub(crate) apps: Vec<AppConfig>,
    pub(crate) seed: Option<u64>,
    pub(crate) token_daily_quota: u32,
}

/// The config file: every field optional; flags given too take precedence (`--app` and
/// friends add to its apps).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct File {
    host: Option<IpAddr>,
    port: Option<u16>,
    seed: Option<u64>,
    token_daily_quota: Option<u32>,
    apps: Vec<AppConfig>,
}

fn command() -> Command {
    let many = |name: &'static str, value: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name(value)
            .help(help)
            .action(ArgAction::Append)
    };
    Command::new("wx-sandbox")
        .about("A local simulator of the WeChat Official Account API, for tests in any language")
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("JSON config: {host, port, seed, token_daily_quota, apps: [{appid, secret, name, consent, oauth_domain, users: [...]}]}"),
        )
        .arg(
            Arg::new("host")
                .long("host")
                .value_name("IP")
                .value_parser(value_parser!(IpAddr))
                .help("address to listen on [default: 127.0.0.1]"),
        )
        .arg(
            Arg::new("port")
                .long("port")
                .value_name("PORT")
                .value_parser(value_parser!(u16))
                .help("port to listen on, 0 for a free one [default: 8642]"),
        )
        .arg(many("app", "APPID:SECRET", "register an app"))
        .arg(many(
            "user",
            "APPID:OPENID[:NICKNAME]",
            "register a user with an app",
        ))
        .arg(many(
            "consent",
            "APPID:ANSWER",
            "who answers the authorize page: first_user, ask, deny or user=OPENID",
        ))
        .arg(many("name", "APPID:NAME", "the account's name on the consent page"))
        .arg(
            Arg::new("seed")
                .long("seed")
                .value_name("N")
                .value_parser(value_parser!(u64))
                .help("seed of tokens, codes and request ids (default: random)"),
        )
        .arg(
            Arg::new("token-daily-quota")
                .long("token-daily-quota")
                .value_name("N")
                .value_parser(value_parser!(u32))
                .help("cgi-bin/token calls per app and day [default: 2000]"),
        )
}

/// Parses the command line (and the config file it names).
///
/// # Errors
/// A message for the user: a bad flag, an unreadable or invalid config file.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            // --help: clap prints it; that is a success.
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => return Err(e.to_string().trim_end().to_owned()),
    };
    let file = match matches.get_one::<PathBuf>("config") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
            serde_json::from_str::<File>(&text)
                .map_err(|e| format!("invalid config {}: {e}", path.display()))?
        }
        None => File::default(),
    };
    let mut apps = file.apps;
    let values = |name: &str| -> Vec<String> {
        matches
            .get_many::<String>(name)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    for spec in values("app") {
        let (appid, secret) = pair(&spec, "--app", "APPID:SECRET")?;
        apps.push(AppConfig::new(appid, secret));
    }
    for spec in values("user") {
        let (appid, rest) = pair(&spec, "--user", "APPID:OPENID[:NICKNAME]")?;
        let (openid, nickname) = rest.split_once(':').unwrap_or((rest, ""));
        let user = UserProfile::new(openid).nickname(nickname);
        app_named(&mut apps, appid, "--user")?.users.push(user);
    }
    for spec in values("consent") {
        let (appid, answer) = pair(&spec, "--consent", "APPID:ANSWER")?;
        let consent = match answer {
            "first_user" => Consent::FirstUser,
            "ask" => Consent::Ask,
            "deny" => Consent::Deny,
            other => match other.strip_prefix("user=") {
                Some(openid) if !openid.is_empty() => Consent::User(openid.to_owned()),
                _ => {
                    return Err(format!(
                        "--consent {spec}: the answer is first_user, ask, deny or user=OPENID"
                    ));
                }
            },
        };
        app_named(&mut apps, appid, "--consent")?.consent = consent;
    }
    for spec in values("name") {
        let (appid, name) = pair(&spec, "--name", "APPID:NAME")?;
        app_named(&mut apps, appid, "--name")?.name = Some(name.to_owned());
    }
    let host = matches
        .get_one::<IpAddr>("host")
        .copied()
        .or(file.host)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let port = matches
        .get_one::<u16>("port")
        .copied()
        .or(file.port)
        .unwrap_or(DEFAULT_PORT);
    Ok(Options {
        listen: SocketAddr::new(host, port),
        apps,
        seed: matches.get_one::<u64>("seed").copied().or(file.seed),
        token_daily_quota: matches
            .get_one::<u32>("token-daily-quota")
            .copied()
            .or(file.token_daily_quota)
            .unwrap_or(2000),
    })
}

fn pair<'a>(spec: &'a str, flag: &str, shape: &str) -> Result<(&'a str, &'a str), String> {
    spec.split_once(':')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("{flag} takes {shape}"))
}

fn app_named<'a>(
    apps: &'a mut [AppConfig],
    appid: &str,
    flag: &str,
) -> Result<&'a mut AppConfig, String> {
    apps.iter_mut()
        .find(|a| a.appid == appid)
        .ok_or_else(|| format!("{flag}: no app {appid} (register it with --app or in the config)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Options, String> {
        parse(
            std::iter::once("wx-sandbox")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn flags_describe_apps_users_and_consent() {
        let o = parse_args(&[
            "--port",
            "0",
            "--app",
            "wx1:s:with:colons",
            "--user",
            "wx1:o-a:Alice",
            "--user",
            "wx1:o-b",
            "--consent",
            "wx1:user=o-b",
            "--name",
            "wx1:Shop",
        ])
        .expect("valid flags");
        assert_eq!(o.listen.port(), 0);
        assert_eq!(o.apps.len(), 1);
        assert_eq!(o.apps[0].secret, "s:with:colons");
        assert_eq!(o.apps[0].users[0].nickname, "Alice");
        assert_eq!(o.apps[0].users[1].openid, "o-b");
        assert_eq!(o.apps[0].consent, Consent::User("o-b".into()));
        assert_eq!(o.apps[0].name.as_deref(), Some("Shop"));
        assert_eq!(o.listen.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn bad_flags_are_explained() {
        let e = parse_args(&["--user", "wx9:o"]).err().expect("unknown app");
        assert!(e.contains("no app wx9"), "{e}");
        let e = parse_args(&["--app", "wx1"]).err().expect("no secret");
        assert!(e.contains("APPID:SECRET"), "{e}");
        let e = parse_args(&["--app", "wx1:s", "--consent", "wx1:maybe"])
            .err()
            .expect("bad answer");
        assert!(e.contains("first_user, ask, deny"), "{e}");
    }
}
