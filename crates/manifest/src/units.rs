//! Durations (`"30s"`) and sizes (`"128MiB"`) as they are written in the manifest.

use std::time::Duration;

/// A number of bytes, parsed from strings such as `"128MiB"`.
pub type ByteSize = u64;

/// Parses a duration such as `"500ms"`, `"30s"`, `"10m"`, `"1h"` or `"7d"`.
///
/// # Errors
/// A message saying what is wrong, fit to follow a key name.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = split_number(s)?;
    let ms = match unit {
        "ms" => Some(num),
        "s" => num.checked_mul(1_000),
        "m" => num.checked_mul(60_000),
        "h" => num.checked_mul(3_600_000),
        "d" => num.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use ms, s, m, h or d, e.g. \"30s\")"
            ));
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Formats a duration the way the manifest writes it (`"30s"`, `"1500ms"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(86_400_000) && ms > 0 {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses a size such as `"128MiB"`, `"1GiB"`, `"512KiB"` or `"1000000B"` (also `KB`/`MB`/`GB`).
///
/// # Errors
/// A message saying what is wrong, fit to follow a key name.
pub fn parse_size(s: &str) -> Result<ByteSize, String> {
    let (num, unit) = split_number(s)?;
    let factor: u64 = match unit {
        "B" | "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{s}` has an unknown unit `{unit}` (use B, KiB, MiB or GiB, e.g. \"128MiB\")"
            ));
        }
    };
    num.checked_mul(factor)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Formats a size the way the manifest writes it (`"128MiB"`, `"1500B"`).
pub fn format_size(n: ByteSize) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n > 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

fn split_number(s: &str) -> Result<(u64, &str), String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "`{s}` must start with a whole number, e.g. \"30s\""
        ));
    }
    let (num, unit) = s.split_at(digits);
    let num = num
        .parse::<u64>()
        .map_err(|_| format!("`{s}` is too large"))?;
    Ok((num, unit.trim()))
}

#[cfg(test)]
mod tests;
