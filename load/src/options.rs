//! The command line, and the profiles it starts from.

use std::fmt;

pub const USAGE: &str = "usage: shop-load --base-url URL --profile normal|stress|spike|browse|checkout|search|flash-sale \
[--users N] [--duration SECONDS] [--ramp-up SECONDS] [--json FILE] \
[--weights REG,BROWSE,ORDER,HEALTH[,SHOP[,SEARCH]]] [--admin-email EMAIL] [--catalog N] [--units N] [--counters N] \
[--ceiling-seconds N] [--settle SECONDS]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Normal,
    Stress,
    Spike,
    Browse,
    /// Orders only, placed both ways: `POST /api/orders` and the shopper's
    /// cart and checkout, side by side in one run.
    Checkout,
    /// Searches only, one request name per kind of search (see
    /// `scenarios::SEARCH_KINDS`), over a catalog seeded with `--catalog`.
    Search,
    /// Many buyers, one product of `--units` units, one unit an order:
    /// exactly that many orders must win and every other buyer get a 409.
    FlashSale,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Normal => "normal",
            Profile::Stress => "stress",
            Profile::Spike => "spike",
            Profile::Browse => "browse",
            Profile::Checkout => "checkout",
            Profile::Search => "search",
            Profile::FlashSale => "flash-sale",
        })
    }
}

/// Scenario weights: how goose shares the virtual users among scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Weights {
    pub registration: usize,
    pub browsing: usize,
    pub ordering: usize,
    pub health: usize,
    /// Browse, fill a cart, view it, check out.
    pub shopping: usize,
    /// Searches of every kind.
    pub searching: usize,
    /// Buyers of the one flash-sale product.
    pub flash_sale: usize,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub base_url: String,
    pub profile: Profile,
    pub users: usize,
    pub duration: u64,
    pub ramp_up: u64,
    pub weights: Weights,
    pub json: Option<String>,
    /// Must be in the server's ADMIN_EMAILS: the setup creates the catalog.
    pub admin_email: String,
    /// Products the setup creates (`--catalog`; `--products` is its old name).
    pub products: usize,
    /// The flash-sale product's units (`--units`, default 1000).
    pub units: u64,
    /// The stock counters the flash-sale product's units are spread over
    /// (`--counters`, default 1).
    pub counters: u64,
    /// A pause between the setup and the attack (`--settle`, default 0):
    /// for a server's change feed to catch up with the setup's writes.
    pub settle: u64,
    pub ceiling_seconds: u64,
}

impl Profile {
    /// (users, duration s, ramp-up s, weights): the original's mix with
    /// shoppers added, reads only for `browse`, orders only for `checkout`.
    fn defaults(self) -> (usize, u64, u64, Weights) {
        let mix = Weights {
            registration: 30,
            browsing: 40,
            ordering: 20,
            health: 10,
            shopping: 20,
            searching: 0,
            flash_sale: 0,
        };
        let none =
            Weights { registration: 0, browsing: 0, ordering: 0, health: 0, shopping: 0, searching: 0, flash_sale: 0 };
        match self {
            Profile::Normal => (50, 60, 10, mix),
            Profile::Stress => (100, 120, 20, mix),
            Profile::Spike => (200, 30, 2, mix),
            Profile::Browse => (50, 60, 5, Weights { browsing: 90, health: 10, ..none }),
            Profile::Checkout => (50, 60, 10, Weights { ordering: 50, shopping: 50, ..none }),
            Profile::Search => (50, 60, 5, Weights { searching: 100, ..none }),
            Profile::FlashSale => (200, 20, 2, Weights { flash_sale: 100, ..none }),
        }
    }
}

impl Options {
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut args = args.peekable();
        let mut base_url = None;
        let mut profile = None;
        let (mut users, mut duration, mut ramp_up, mut weights) = (None, None, None, None);
        let mut json = None;
        let mut admin_email = "load-admin@example.com".to_owned();
        let mut products = 200;
        let mut units = 1000;
        let mut counters = 1;
        let mut settle = 0;
        let mut ceiling_seconds = 3;
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--base-url" => base_url = Some(value()?.trim_end_matches('/').to_owned()),
                "--profile" => {
                    profile = Some(match value()?.as_str() {
                        "normal" => Profile::Normal,
                        "stress" => Profile::Stress,
                        "spike" => Profile::Spike,
                        "browse" => Profile::Browse,
                        "checkout" => Profile::Checkout,
                        "search" => Profile::Search,
                        "flash-sale" => Profile::FlashSale,
                        other => return Err(format!("unknown profile `{other}`")),
                    })
                }
                "--users" => users = Some(number(&flag, &value()?, 1)?),
                "--duration" => duration = Some(number(&flag, &value()?, 1)? as u64),
                "--ramp-up" => ramp_up = Some(number(&flag, &value()?, 0)? as u64),
                "--weights" => weights = Some(parse_weights(&value()?)?),
                "--json" => json = Some(value()?),
                "--admin-email" => admin_email = value()?,
                "--catalog" | "--products" => products = number(&flag, &value()?, 1)?,
                "--units" => units = number(&flag, &value()?, 1)? as u64,
                "--counters" => counters = number(&flag, &value()?, 1)? as u64,
                "--settle" => settle = number(&flag, &value()?, 0)? as u64,
                "--ceiling-seconds" => ceiling_seconds = number(&flag, &value()?, 1)? as u64,
                "--help" | "-h" => return Err("help".into()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let base_url = base_url.ok_or("--base-url is required")?;
        let profile = profile.ok_or("--profile is required")?;
        let (default_users, default_duration, default_ramp_up, default_weights) = profile.defaults();
        Ok(Options {
            base_url,
            profile,
            users: users.unwrap_or(default_users),
            duration: duration.unwrap_or(default_duration),
            ramp_up: ramp_up.unwrap_or(default_ramp_up),
            weights: weights.unwrap_or(default_weights),
            json,
            admin_email,
            products,
            units,
            counters,
            settle,
            ceiling_seconds,
        })
    }
}

fn number(flag: &str, raw: &str, min: usize) -> Result<usize, String> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| format!("{flag} must be an integer of at least {min}, not `{raw}`"))
}

fn parse_weights(raw: &str) -> Result<Weights, String> {
    let parts: Vec<usize> = raw
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--weights takes four to six integers, not `{raw}`"))?;
    match parts[..] {
        [registration, browsing, ordering, health, ..] if parts.len() <= 6 && parts.iter().sum::<usize>() > 0 => {
            let shopping = parts.get(4).copied().unwrap_or(0);
            let searching = parts.get(5).copied().unwrap_or(0);
            Ok(Weights { registration, browsing, ordering, health, shopping, searching, flash_sale: 0 })
        }
        _ => Err(format!(
            "--weights takes four to six integers (REG,BROWSE,ORDER,HEALTH[,SHOP[,SEARCH]]), not all zero: `{raw}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Options, String> {
        Options::from_args(args.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn a_profile_supplies_the_defaults_and_flags_override_them() {
        let options = parse("--base-url http://127.0.0.1:3000/ --profile stress --users 7").unwrap();
        assert_eq!(options.base_url, "http://127.0.0.1:3000");
        assert_eq!((options.users, options.duration, options.ramp_up), (7, 120, 20));
        assert_eq!(options.weights.registration, 30);
        let browse = parse("--base-url u --profile browse").unwrap();
        assert_eq!((browse.weights.registration, browse.weights.ordering, browse.weights.shopping), (0, 0, 0));
        let checkout = parse("--base-url u --profile checkout").unwrap();
        assert_eq!((checkout.weights.ordering, checkout.weights.shopping, checkout.weights.browsing), (50, 50, 0));
        let four = parse("--base-url u --profile normal --weights 1,2,3,4").unwrap();
        assert_eq!((four.weights.health, four.weights.shopping), (4, 0), "four weights leave shoppers out");
        let five = parse("--base-url u --profile normal --weights 0,0,0,0,1").unwrap();
        assert_eq!(five.weights.shopping, 1);
        let six = parse("--base-url u --profile normal --weights 0,0,0,0,0,2").unwrap();
        assert_eq!((six.weights.searching, six.weights.shopping), (2, 0));
        let flash = parse("--base-url u --profile flash-sale --units 40").unwrap();
        assert_eq!((flash.weights.flash_sale, flash.units, flash.users, flash.counters), (100, 40, 200, 1));
        let spread = parse("--base-url u --profile flash-sale --counters 8").unwrap();
        assert_eq!(spread.counters, 8);
        let search = parse("--base-url u --profile search --catalog 100000").unwrap();
        assert_eq!((search.weights.searching, search.weights.browsing, search.products), (100, 0, 100_000));
        assert_eq!(parse("--base-url u --profile normal --products 7").unwrap().products, 7, "the old name");
    }

    #[test]
    fn bad_arguments_are_explained() {
        assert!(parse("--profile normal").unwrap_err().contains("--base-url"));
        assert!(parse("--base-url u --profile calm").unwrap_err().contains("calm"));
        assert!(parse("--base-url u --profile normal --users 0").is_err());
        assert!(parse("--base-url u --profile normal --weights 1,2,3").is_err());
        assert!(parse("--base-url u --profile normal --weights 0,0,0,0").is_err());
        assert!(parse("--base-url u --profile normal --weights 1,1,1,1,1,1,1").is_err());
        assert!(parse("--base-url u --profile normal --catalog 0").is_err());
        assert!(parse("--base-url u --profile normal --frobnicate").is_err());
    }
}
