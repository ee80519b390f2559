//! Prompts for the four skill flavours (the seeds): each turns a few
//! arguments into the plan an agent should follow with the tools.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{GetPromptResult, PromptMessage, Role};
use rmcp::{prompt, prompt_router};
use serde::Deserialize;

use super::server::NemoServer;
use nemo_client::flavour as skill;

/// Arguments of `save-online-video`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct SaveOnlineVideo {
    /// The video's web address (YouTube or another video page, or a direct link).
    pub(crate) url: String,
    /// The resolution wanted, e.g. "1080p" (default: the highest available).
    #[serde(default)]
    pub(crate) resolution: Option<String>,
    /// Where to save the MP4 (an absolute path is best).
    #[serde(default)]
    pub(crate) out: Option<String>,
}

/// Arguments of `make-video-from-clips`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct MakeVideoFromClips {
    /// The clips, photos and music to use: paths or URLs, separated by commas or new lines.
    pub(crate) files: String,
    /// What to make, e.g. "a 60-second video with transitions and text overlays".
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Where to save the MP4 (an absolute path is best).
    #[serde(default)]
    pub(crate) out: Option<String>,
}

/// Arguments of `generate-from-link`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct GenerateFromLink {
    /// The article, web page or video link to generate the video from.
    pub(crate) link: String,
    /// What the video should be like, e.g. "a 30-second vertical summary with captions".
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Where to save the MP4 (an absolute path is best).
    #[serde(default)]
    pub(crate) out: Option<String>,
}

/// Arguments of `process-file`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub(crate) struct ProcessFile {
    /// The video (or image, or audio) file to process: a path or a URL.
    pub(crate) file: String,
    /// What to do with it, e.g. "trim to 30 seconds and add captions".
    pub(crate) instruction: String,
    /// Where to save the result (an absolute path is best).
    #[serde(default)]
    pub(crate) out: Option<String>,
}

fn flavour(name: &str) -> String {
    match skill::find(Some(name)) {
        Ok(s) => format!("({}) {}", s.name, s.greeting),
        Err(_) => String::new(),
    }
}

fn out_words(out: Option<&str>) -> String {
    match out.map(str::trim).filter(|s| !s.is_empty()) {
        Some(out) => format!("with `out` set to \"{out}\""),
        None => "(pass `out` to choose where the MP4 goes)".into(),
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| format!("\"{s}\""))
        .collect()
}

fn prompt(description: String, text: String) -> GetPromptResult {
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(description)
}

#[prompt_router(vis = "pub(super)")]
impl NemoServer {
    /// Save an online video (YouTube or another page) as an MP4, at the highest resolution unless another is asked for.
    #[prompt(name = "save-online-video")]
    async fn save_online_video(
        &self,
        Parameters(a): Parameters<SaveOnlineVideo>,
    ) -> GetPromptResult {
        let resolution = a
            .resolution
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map_or("the highest available resolution".to_owned(), str::to_owned);
        prompt(
            flavour("video-download-online"),
            format!(
                "Save the online video {url} as an MP4 at {resolution}, using the NemoVideo tools:\n\
1. `upload` with inputs [\"{url}\"].\n\
2. `instruct` with the message \"convert this video to MP4 at {resolution}\".\n\
3. `export` {out}, and tell me where the file was saved.\n\
If a tool returns an error, show me its message (it says what to do next, e.g. a registration \
link when credits run out).",
                url = a.url.trim(),
                out = out_words(a.out.as_deref()),
            ),
        )
    }

    /// Make one video from clips, photos and music (transitions, text, a soundtrack).
    #[prompt(name = "make-video-from-clips")]
    async fn make_video_from_clips(
        &self,
        Parameters(a): Parameters<MakeVideoFromClips>,
    ) -> GetPromptResult {
        let description = a
            .description
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(
                "a finished video with smooth transitions, using the music as the soundtrack",
            );
        prompt(
            flavour("video-maker-free-download-app"),
            format!(
                "Make one video from my clips, photos and music with the NemoVideo tools:\n\
1. `upload` with inputs [{files}].\n\
2. `instruct` with the message \"combine these into {description}\".\n\
3. `timeline` to check the result; `instruct` again for any correction.\n\
4. `export` {out}, and tell me where the file was saved.\n\
If a tool returns an error, show me its message (it says what to do next).",
                files = split_list(&a.files).join(", "),
                out = out_words(a.out.as_deref()),
            ),
        )
    }

    /// Generate a video from an article, a web page or a video link.
    #[prompt(name = "generate-from-link")]
    async fn generate_from_link(
        &self,
        Parameters(a): Parameters<GenerateFromLink>,
    ) -> GetPromptResult {
        let description = a
            .description
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("a 1080p video that tells what it is about");
        prompt(
            flavour("generator-by-link"),
            format!(
                "Generate a video from {link} with the NemoVideo tools:\n\
1. `instruct` with the message \"generate {description} from this link: {link}\".\n\
2. `timeline` to check the result; `instruct` again for any correction.\n\
3. `export` {out}, and tell me where the file was saved.\n\
If a tool returns an error, show me its message (it says what to do next).",
                link = a.link.trim(),
                out = out_words(a.out.as_deref()),
            ),
        )
    }

    /// Process one file (trim, captions, music, resize, …) and get the edited video back.
    #[prompt(name = "process-file")]
    async fn process_file(&self, Parameters(a): Parameters<ProcessFile>) -> GetPromptResult {
        prompt(
            flavour("video-openapi"),
            format!(
                "Process my file with the NemoVideo tools:\n\
1. `upload` with inputs [\"{file}\"].\n\
2. `instruct` with the message \"{instruction}\".\n\
3. `export` {out}, and tell me where the file was saved.\n\
If a tool returns an error, show me its message (it says what to do next, e.g. the accepted \
formats for an unsupported file).",
                file = a.file.trim(),
                instruction = a.instruction.trim(),
                out = out_words(a.out.as_deref()),
            ),
        )
    }
}
