//! The four flavours of the service (the seeds' "skills"): what each sends
//! as `X-Skill-Source`, how it greets, what it suggests saying; and the
//! platform detection behind `X-Skill-Platform`. Every frontend picks one
//! (the `nemo` command's `--skill`, the MCP server's prompts); the default
//! is [`DEFAULT_SKILL`].

use nemo_core::api::Attribution;
use nemo_core::error::{ErrorKind, NemoError};

/// One flavour of the skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skill {
    /// `X-Skill-Source`.
    pub name: &'static str,
    /// The greeting shown when a conversation starts.
    pub greeting: &'static str,
    /// "Try saying" examples.
    pub examples: [&'static str; 3],
}

/// The four flavours, in the seeds' words.
pub const SKILLS: [Skill; 4] = [
    Skill {
        name: "video-download-online",
        greeting: "Ready when you are. Drop your online video URLs here or describe what you want to make.",
        examples: [
            "convert a YouTube video URL at 1080p into a 1080p MP4",
            "download this video in MP4 format at the highest available resolution",
            "saving online videos to device for offline playback for students, content creators, marketers",
        ],
    },
    Skill {
        name: "video-maker-free-download-app",
        greeting: "Got video clips or images to work with? Send it over and tell me what you need — I'll take care of the AI video creation.",
        examples: [
            "create five product photos and a background music file into a 1080p MP4",
            "combine these clips into a 60-second video with transitions and text overlays",
            "creating shareable videos from photos and clips without installing software for casual creators and students",
        ],
    },
    Skill {
        name: "generator-by-link",
        greeting: "Got URL or link to work with? Send it over and tell me what you need — I'll take care of the AI video generation.",
        examples: [
            "generate a YouTube or webpage URL into a 1080p MP4",
            "generate a video from this article link: https://example.com/blog-post",
            "creating videos from web links or online content for marketers, content creators, bloggers",
        ],
    },
    Skill {
        name: "video-openapi",
        greeting: "Send me your video clips and I'll handle the API video processing. Or just describe what you're after.",
        examples: [
            "process a 2-minute MP4 product demo into a 1080p MP4",
            "send a video file via API and get back an edited, processed video automatically",
            "integrating video editing into apps via API calls for developers and marketers",
        ],
    },
];

/// The flavour used when none is chosen.
pub const DEFAULT_SKILL: &str = "video-openapi";

/// The flavour called `name` (`None`: the default one).
pub fn find(name: Option<&str>) -> Result<Skill, NemoError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SKILL);
    SKILLS
        .iter()
        .copied()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = SKILLS.iter().map(|s| s.name).collect();
            NemoError::new(
                ErrorKind::BadInput,
                format!(
                    "Unknown skill `{name}`. Choose one of: {}.",
                    names.join(", ")
                ),
            )
        })
}

/// `X-Skill-Platform`: `SKILL_SOURCE` when set, else detected from where
/// `nemo` is installed (`~/.clawhub/` → `clawhub`, `~/.cursor/skills/` →
/// `cursor`), else `unknown`.
pub fn platform() -> String {
    if let Ok(source) = std::env::var("SKILL_SOURCE") {
        let source = source.trim();
        if !source.is_empty() {
            return source.to_owned();
        }
    }
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"));
    platform_of(exe.as_deref().unwrap_or(""))
}

fn platform_of(install_path: &str) -> String {
    if install_path.contains("/.clawhub/") {
        "clawhub".into()
    } else if install_path.contains("/.cursor/skills/") {
        "cursor".into()
    } else {
        "unknown".into()
    }
}

/// The attribution triple for a flavour.
pub fn attribution(skill: Skill) -> Attribution {
    Attribution {
        source: skill.name.to_owned(),
        platform: platform(),
        ..Attribution::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours_and_platforms() {
        assert_eq!(find(None).unwrap().name, "video-openapi");
        assert_eq!(
            find(Some("generator-by-link")).unwrap().name,
            "generator-by-link"
        );
        let err = find(Some("nope")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadInput);
        assert!(err.message.contains("video-download-online"));
        assert_eq!(
            platform_of("/home/a/.clawhub/skills/nemo/bin/nemo"),
            "clawhub"
        );
        assert_eq!(platform_of("/home/a/.cursor/skills/nemo/nemo"), "cursor");
        assert_eq!(platform_of("/usr/local/bin/nemo"), "unknown");
    }
}
