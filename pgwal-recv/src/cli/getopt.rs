//! glibc's `getopt_long`, as the parent module's docs describe it: every subcommand's
//! options go through it.

use super::{CliError, Opt};

/// Finds a long option by its name or an unambiguous prefix of it; `arg` is the argument as
/// typed, which glibc quotes (with any `=value`) when it cannot find the option.
fn long(
    table: &[(&'static str, bool, Opt)],
    name: &str,
    arg: &str,
) -> Result<(&'static str, bool, Opt), CliError> {
    if let Some(&exact) = table.iter().find(|(n, _, _)| *n == name) {
        return Ok(exact);
    }
    let found: Vec<_> = table
        .iter()
        .filter(|(n, _, _)| n.starts_with(name))
        .collect();
    match found[..] {
        [] => Err(CliError::getopt(format!("unrecognized option '{arg}'"))),
        [&one] => Ok(one),
        _ => {
            let names: Vec<String> = found.iter().map(|(n, _, _)| format!("'--{n}'")).collect();
            Err(CliError::getopt(format!(
                "option '{arg}' is ambiguous; possibilities: {}",
                names.join(" ")
            )))
        }
    }
}

/// Takes in one option and its value.
pub(super) type SetOpt<'s> = dyn FnMut(Opt, Option<&str>) -> Result<(), CliError> + 's;

/// glibc's `getopt_long` over `args`: each option goes to `set`; the operands are returned.
pub(super) fn getopt<'a>(
    args: &'a [String],
    table: &[(&'static str, bool, Opt)],
    short: fn(char) -> Option<(bool, Opt)>,
    set: &mut SetOpt<'_>,
) -> Result<Vec<&'a str>, CliError> {
    let mut operands: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            operands.extend(rest.by_ref().map(String::as_str));
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let (full, takes_value, opt) = long(table, name, arg)?;
            let value = match (takes_value, attached) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(rest.next().map(String::as_str).ok_or_else(|| {
                    CliError::getopt(format!("option '--{full}' requires an argument"))
                })?),
                (false, Some(_)) => {
                    return Err(CliError::getopt(format!(
                        "option '--{full}' doesn't allow an argument"
                    )))
                }
                (false, None) => None,
            };
            set(opt, value)?;
        } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (at, c) in cluster.char_indices() {
                let (takes_value, opt) =
                    short(c).ok_or_else(|| CliError::getopt(format!("invalid option -- '{c}'")))?;
                if !takes_value {
                    set(opt, None)?;
                    continue;
                }
                let attached = &cluster[at + c.len_utf8()..];
                let value = if attached.is_empty() {
                    rest.next().map(String::as_str).ok_or_else(|| {
                        CliError::getopt(format!("option requires an argument -- '{c}'"))
                    })?
                } else {
                    attached
                };
                set(opt, Some(value))?;
                break;
            }
        } else {
            // Includes a lone `-`, which getopt treats as an operand.
            operands.push(arg);
        }
    }
    Ok(operands)
}
