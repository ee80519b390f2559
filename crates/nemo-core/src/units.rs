//! Sizes as people read them, for every frontend's messages.

/// Bytes in decimal units (powers of 1000, as the service counts its
/// limits): `12 bytes`, `43.8 kB`, `1.2 MB`, `1.6 GB`, up to `PB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 999.95 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_in_decimal_units() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(43_792), "43.8 kB");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(510_000_000), "510.0 MB");
        assert_eq!(human_bytes(1_600_000_000), "1.6 GB");
        assert_eq!(human_bytes(10_000_000_000_000), "10.0 TB");
        assert_eq!(human_bytes(u64::MAX), "18446.7 PB");
    }
}
