//! Media: the fixture files, generated render bodies, `Range` requests and
//! the metadata probe used to describe uploads.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;

/// A real, playable H.264 + AAC MP4 (320×180, 24 fps, 4 s), served as every
/// render's output unless `render_bytes` is set.
pub const SAMPLE_MP4: &[u8] = include_bytes!("../../../fixtures/media/sample.mp4");
/// A small JPEG (640×360).
pub const PHOTO_JPG: &[u8] = include_bytes!("../../../fixtures/media/photo.jpg");
/// A small MP3 (3 s).
pub const MUSIC_MP3: &[u8] = include_bytes!("../../../fixtures/media/music.mp3");

/// The sample's duration in seconds.
pub const SAMPLE_SECONDS: f64 = 4.0;

/// What a render's output file is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaSource {
    /// [`SAMPLE_MP4`].
    Sample,
    /// `n` deterministic pseudo-random bytes, generated on the fly.
    Generated(u64),
}

const CHUNK: usize = 64 * 1024;

impl MediaSource {
    pub(crate) fn len(self) -> u64 {
        match self {
            MediaSource::Sample => SAMPLE_MP4.len() as u64,
            MediaSource::Generated(n) => n,
        }
    }

    /// Up to 64 KiB from `offset`, never past `end` (exclusive).
    pub(crate) fn chunk(self, offset: u64, end: u64) -> Bytes {
        let end = end.min(self.len());
        if offset >= end {
            return Bytes::new();
        }
        let n = ((end - offset) as usize).min(CHUNK);
        match self {
            MediaSource::Sample => {
                Bytes::from_static(&SAMPLE_MP4[offset as usize..offset as usize + n])
            }
            MediaSource::Generated(_) => Bytes::from(
                (offset..offset + n as u64)
                    .map(generated_byte)
                    .collect::<Vec<u8>>(),
            ),
        }
    }
}

/// The byte at `offset` of a generated body: SplitMix64's mix of the 8-byte
/// word's index, so any range can be produced (and checked) without the rest.
pub fn generated_byte(offset: u64) -> u8 {
    let word = nemo_core::rng::SeededRng::new(offset / 8).next_u64();
    word.to_le_bytes()[(offset % 8) as usize]
}

/// A parsed `Range` header against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No (usable) range: send everything with 200.
    Full,
    /// Send `start..end` (exclusive) with 206.
    Part(u64, u64),
    /// Cannot be satisfied: 416.
    Unsatisfiable,
}

/// Reads `bytes=a-b`, `bytes=a-` and `bytes=-n`. Several ranges or other
/// units are answered with the whole body, as RFC 9110 allows.
pub(crate) fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeRequest::Full,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), len)),
            Err(_) => None,
        },
        (false, _) => match a.parse::<u64>() {
            Ok(start) => {
                let end = if b.is_empty() {
                    Some(len)
                } else {
                    b.parse::<u64>().ok().map(|e| e.saturating_add(1).min(len))
                };
                match end {
                    Some(end) if b.is_empty() || b.parse::<u64>().is_ok_and(|e| e >= start) => {
                        Some((start, end))
                    }
                    _ => None,
                }
            }
            Err(_) => None,
        },
    };
    match parsed {
        None => RangeRequest::Full,
        Some((start, end)) if start >= len || start >= end => RangeRequest::Unsatisfiable,
        Some((start, end)) => RangeRequest::Part(start, end),
    }
}

/// What the probe learned about a media file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Probe {
    pub(crate) duration: Option<f64>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
    pub(crate) fps: Option<f64>,
}

/// Probes a stored file by its kind: ISO BMFF (`mp4`/`mov`/`m4a`) boxes,
/// JPEG/PNG headers. Anything unreadable gives an empty probe.
pub(crate) fn probe_file(path: &Path, ext: &str) -> Probe {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Probe::default();
    };
    match ext {
        "mp4" | "mov" | "m4a" => probe_mp4(&mut file).unwrap_or_default(),
        "jpg" | "jpeg" | "png" | "gif" | "webp" => {
            let mut head = vec![0u8; 256 * 1024];
            let n = read_up_to(&mut file, &mut head);
            head.truncate(n);
            let (width, height) = image_size(&head).unzip();
            Probe {
                width,
                height,
                ..Probe::default()
            }
        }
        _ => Probe::default(),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

/// Iterates the boxes inside `data`: `(type, payload)`.
fn boxes(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let size = be32(data, pos)? as usize;
        let kind = data.get(pos + 4..pos + 8)?;
        let (header, size) = match size {
            1 => (16, be64(data, pos + 8)? as usize),
            0 => (8, data.len() - pos),
            s => (8, s),
        };
        if size < header || pos + size > data.len() {
            return None;
        }
        let payload = &data[pos + header..pos + size];
        pos += size;
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

fn probe_mp4(file: &mut std::fs::File) -> Option<Probe> {
    // Find `moov` among the top-level boxes without reading the media data.
    let len = file.metadata().ok()?.len();
    let mut pos = 0u64;
    let moov = loop {
        if pos + 8 > len {
            return None;
        }
        file.seek(SeekFrom::Start(pos)).ok()?;
        let mut head = [0u8; 16];
        let n = read_up_to(file, &mut head);
        if n < 8 {
            return None;
        }
        let (header, size) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            1 if n == 16 => (16u64, be64(&head, 8)?),
            0 => (8, len - pos),
            s => (8, u64::from(s)),
        };
        if size < header {
            return None;
        }
        if &head[4..8] == b"moov" {
            if size > 64 * 1024 * 1024 {
                return None;
            }
            file.seek(SeekFrom::Start(pos + header)).ok()?;
            let mut buf = vec![0u8; (size - header) as usize];
            file.read_exact(&mut buf).ok()?;
            break buf;
        }
        pos = pos.checked_add(size)?;
    };
    let mut probe = Probe::default();
    if let Some(mvhd) = child(&moov, b"mvhd") {
        let (ts, dur) = if mvhd.first() == Some(&1) {
            (be32(mvhd, 20)?, be64(mvhd, 24)?)
        } else {
            (be32(mvhd, 12)?, u64::from(be32(mvhd, 16)?))
        };
        if ts > 0 {
            probe.duration = Some(dur as f64 / f64::from(ts));
        }
    }
    for (kind, trak) in boxes(&moov) {
        if kind != b"trak" {
            continue;
        }
        let Some(tkhd) = child(trak, b"tkhd") else {
            continue;
        };
        let base = if tkhd.first() == Some(&1) {
            4 + 32
        } else {
            4 + 20
        };
        let w = be32(tkhd, base + 52).unwrap_or(0) >> 16;
        let h = be32(tkhd, base + 56).unwrap_or(0) >> 16;
        if w == 0 || h == 0 {
            continue;
        }
        probe.width = Some(w);
        probe.height = Some(h);
        let mdia = child(trak, b"mdia");
        let timescale = mdia.and_then(|m| child(m, b"mdhd")).and_then(|mdhd| {
            if mdhd.first() == Some(&1) {
                be32(mdhd, 20)
            } else {
                be32(mdhd, 12)
            }
        });
        let delta = mdia
            .and_then(|m| child(m, b"minf"))
            .and_then(|m| child(m, b"stbl"))
            .and_then(|s| child(s, b"stts"))
            .and_then(|stts| be32(stts, 12));
        if let (Some(ts), Some(d)) = (timescale, delta) {
            if d > 0 {
                probe.fps = Some((f64::from(ts) / f64::from(d) * 100.0).round() / 100.0);
            }
        }
        break;
    }
    Some(probe)
}

/// Width and height of a PNG, GIF or baseline/progressive JPEG.
fn image_size(head: &[u8]) -> Option<(u32, u32)> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(head, 16)?, be32(head, 20)?));
    }
    if head.starts_with(b"GIF8") {
        let w = u16::from_le_bytes([*head.get(6)?, *head.get(7)?]);
        let h = u16::from_le_bytes([*head.get(8)?, *head.get(9)?]);
        return Some((u32::from(w), u32::from(h)));
    }
    if head.starts_with(&[0xff, 0xd8]) {
        let mut i = 2;
        while i + 9 < head.len() {
            if head[i] != 0xff {
                i += 1;
                continue;
            }
            let marker = head[i + 1];
            let seg = u16::from_be_bytes([head[i + 2], head[i + 3]]) as usize;
            if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
                let h = u16::from_be_bytes([head[i + 5], head[i + 6]]);
                let w = u16::from_be_bytes([head[i + 7], head[i + 8]]);
                return Some((u32::from(w), u32::from(h)));
            }
            i += 2 + seg;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 100), Full);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Part(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part(90, 100));
        assert_eq!(parse_range(Some("bytes=-200"), 100), Part(0, 100));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Part(50, 100));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Full);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 100), Full);
    }

    #[test]
    fn generated_bodies_are_random_access() {
        let src = MediaSource::Generated(200_000);
        let all: Vec<u8> = (0..200_000).map(generated_byte).collect();
        let c = src.chunk(70_001, 200_000);
        assert_eq!(&c[..], &all[70_001..70_001 + 65_536]);
        assert_eq!(src.chunk(199_999, 200_000).len(), 1);
        // Recorded downloads and other clients' checks rely on these bytes.
        assert_eq!(
            all[..16],
            [175, 205, 29, 123, 57, 168, 32, 226, 193, 92, 2, 137, 236, 45, 10, 145]
        );
    }

    #[test]
    fn probes_the_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let mp4 = dir.path().join("a.mp4");
        std::fs::write(&mp4, SAMPLE_MP4).unwrap();
        let p = probe_file(&mp4, "mp4");
        assert_eq!((p.width, p.height), (Some(320), Some(180)));
        assert!((p.duration.unwrap() - SAMPLE_SECONDS).abs() < 0.1, "{p:?}");
        assert_eq!(p.fps, Some(24.0));
        let jpg = dir.path().join("a.jpg");
        std::fs::write(&jpg, PHOTO_JPG).unwrap();
        let p = probe_file(&jpg, "jpg");
        assert_eq!((p.width, p.height), (Some(640), Some(360)));
    }
}
