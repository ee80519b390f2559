//! Unit tests of the machine's private helpers.

use super::upload::check_url;

#[test]
fn urls_are_checked() {
    assert!(check_url("https://youtu.be/abc").is_ok());
    assert!(check_url("ftp://x.com/a").is_err());
    assert!(check_url("https://").is_err());
    assert!(check_url("https://exa mple.com").is_err());
    assert!(check_url("http://localhost/x").is_err());
}

#[test]
fn credits_named_in_a_2001_message() {
    use super::failure::credits_in;
    assert_eq!(
        credits_in("Insufficient credits: this needs 5, 2 available"),
        (Some(5.0), Some(2.0))
    );
    assert_eq!(
        credits_in("required: 12.5, available: 0"),
        (Some(12.5), Some(0.0))
    );
    assert_eq!(
        credits_in("You need 3 credits but have 1"),
        (Some(3.0), Some(1.0))
    );
    assert_eq!(credits_in("insufficient credits"), (None, None));
}

#[test]
fn the_choice_names_what_post_production_added() {
    use super::events::post_production_choice;
    use super::{Event, POST_PRODUCTION_CHOICES, POST_PRODUCTION_SUGGESTIONS};
    use crate::adk::Addition;
    let all = post_production_choice(&[Addition::Effects, Addition::Music, Addition::Title]);
    assert_eq!(
        all,
        Some(Event::Suggestions {
            message: POST_PRODUCTION_CHOICES.into(),
            suggestions: POST_PRODUCTION_SUGGESTIONS.map(str::to_owned).to_vec(),
        })
    );
    let Some(Event::Suggestions {
        message,
        suggestions,
    }) = post_production_choice(&[Addition::Subtitles, Addition::Music, Addition::Music])
    else {
        panic!("a choice");
    };
    assert_eq!(
        message,
        "Post-production added music and subtitles. Keep them, or remove what you do not want:"
    );
    assert_eq!(
        suggestions,
        ["keep them", "remove the music", "remove the subtitles"]
    );
    assert_eq!(post_production_choice(&[]), None);
}

#[test]
fn what_a_tool_adds() {
    use crate::adk::Addition;
    for (name, want) in [
        ("add_background_music", Some(Addition::Music)),
        ("add_title", Some(Addition::Title)),
        ("add_subtitles", Some(Addition::Subtitles)),
        ("apply_effects", Some(Addition::Effects)),
        ("add_effect", Some(Addition::Effects)),
        ("color_grade", Some(Addition::Effects)),
        ("add_transitions", Some(Addition::Transitions)),
        ("remove_music", None),
        ("generate_video", None),
        ("trim_timeline", None),
    ] {
        assert_eq!(Addition::of_tool(name), want, "{name}");
    }
}
