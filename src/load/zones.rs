//! A delivery window that takes each recipient's time zone from a parameter
//! (`timezone: {parameter: tz}`): every recipient has that parameter, naming a zone the built-in
//! IANA database knows, reported at the recipient's item or CSV row.

use std::sync::Arc;

use super::*;
use crate::window::parse::{Setting, delivery_window, unknown_zone, zone_help};
use crate::window::{DeliveryWindow, Zone};

/// The manifest's own window (`None`: none written, `off`, or an error, reported), whether it
/// writes `deliveryWindow` at all (then no target's default applies), and the parameters its
/// recipients' time zones come from: of its own window, or else of the default window of every
/// target it is planned for (`targets`: `None`, all of `defaults`).
pub(super) fn windows(
    w: &mut Walker,
    f: &BTreeMap<String, &Node>,
    targets: Option<&[String]>,
    defaults: &[(String, Arc<DeliveryWindow>)],
) -> (Option<Arc<DeliveryWindow>>, bool, Vec<String>) {
    let own = f.contains_key(crate::window::parse::FIELD);
    let window = match delivery_window(w, f, "") {
        Some(Setting::On(win)) => Some(Arc::new(win)),
        Some(Setting::Off) | None => None,
    };
    let applying: Vec<&DeliveryWindow> = if own {
        window.iter().map(|d| &**d).collect()
    } else {
        let planned = |name: &String| targets.is_none_or(|t| t.contains(name));
        defaults.iter().filter(|(name, _)| planned(name)).map(|(_, d)| &**d).collect()
    };
    let mut parameters: Vec<String> = Vec::new();
    for d in applying {
        if let Zone::Parameter(p) = &d.zone
            && !parameters.contains(p)
        {
            parameters.push(p.clone());
        }
    }
    (window, own, parameters)
}

/// Every recipient's zone parameter `param` is present and names a known zone.
pub(super) fn check_zones(
    w: &mut Walker,
    param: &str,
    recipients: &[Recipient],
    (positions, csv): (&[Pos], Option<&(PathBuf, usize)>),
) {
    let at = Locator::new(positions, csv);
    let mut known: HashMap<&str, bool> = HashMap::new();
    let mut bad = 0usize;
    for (i, r) in recipients.iter().enumerate() {
        let (message, help) = match r.parameters.get(param) {
            None => (
                format!(
                    "`{}` has no parameter `{param}`, which holds the recipient's time zone (deliveryWindow)",
                    crate::safe::line(&r.id)
                ),
                format!(
                    "give every recipient a `{param}` (a CSV column or an inline parameter) with an IANA zone such as Europe/Berlin"
                ),
            ),
            Some(z) if !*known.entry(z).or_insert_with(|| crate::window::zone(z).is_some()) => {
                (format!("{} (parameter `{param}` of `{}`)", unknown_zone(z), crate::safe::line(&r.id)), zone_help(z))
            }
            Some(_) => continue,
        };
        bad += 1;
        if bad <= MAX_RECIPIENT_DIAGS {
            let mut d = at.diag(w, i, true, message, help);
            d.field = join(&d.field, &format!("parameters.{param}"));
            w.diags.push(d);
        }
    }
    if bad > MAX_RECIPIENT_DIAGS {
        let d = at.diag(
            w,
            0,
            true,
            format!(
                "{bad} recipients without a known time zone in `{param}` in all ({MAX_RECIPIENT_DIAGS} listed above)"
            ),
            "every recipient needs an IANA zone such as Europe/Berlin".into(),
        );
        w.diags.push(d);
    }
}
