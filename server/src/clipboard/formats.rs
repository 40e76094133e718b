//! X selection formats: which target to ask an owner for, and text encodings. Pure.
//!
//! X names formats by atoms ("targets"). Modern clients offer `UTF8_STRING`; `STRING` is
//! ICCCM's Latin-1; `TEXT` lets the owner pick. PNG is offered by browsers, GIMP, xclip
//! and screenshot tools as `image/png`, passed through as bytes.

use super::chunks::ClipMime;

/// A target name with the format its bytes are in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Png,
    Utf8,
    /// `text/plain;charset=utf-8`, what some toolkits offer besides `UTF8_STRING`.
    MimeUtf8,
    /// Latin-1 (ICCCM `STRING`).
    Latin1,
    /// `TEXT`: the owner chooses; in practice UTF-8 or Latin-1.
    Text,
}

impl Target {
    pub const ALL: [Target; 5] = [Target::Png, Target::Utf8, Target::MimeUtf8, Target::Latin1, Target::Text];

    pub fn atom_name(self) -> &'static [u8] {
        match self {
            Target::Png => b"image/png",
            Target::Utf8 => b"UTF8_STRING",
            Target::MimeUtf8 => b"text/plain;charset=utf-8",
            Target::Latin1 => b"STRING",
            Target::Text => b"TEXT",
        }
    }

    pub fn mime(self) -> ClipMime {
        match self {
            Target::Png => ClipMime::Png,
            _ => ClipMime::Text,
        }
    }

    /// The targets we serve for content of `mime`, best first (announced in TARGETS).
    pub fn offered_for(mime: ClipMime) -> &'static [Target] {
        match mime {
            ClipMime::Png => &[Target::Png],
            ClipMime::Text => &[Target::Utf8, Target::MimeUtf8, Target::Latin1, Target::Text],
        }
    }
}

/// The target to convert to, given what the owner offers (`offered` as [`Target`]s, in
/// any order): a PNG image if there is one, else the best text encoding.
pub fn choose(offered: &[Target]) -> Option<Target> {
    [Target::Png, Target::Utf8, Target::MimeUtf8, Target::Latin1, Target::Text]
        .into_iter()
        .find(|t| offered.contains(t))
}

/// The next target to try after `failed` was refused, for owners that do not answer
/// TARGETS or refuse what they listed.
pub fn fallback_after(failed: Option<Target>) -> Option<Target> {
    match failed {
        None => Some(Target::Utf8),
        Some(Target::Png) => Some(Target::Utf8),
        Some(Target::Utf8) | Some(Target::MimeUtf8) => Some(Target::Latin1),
        Some(Target::Latin1) => Some(Target::Text),
        Some(Target::Text) => None,
    }
}

/// Bytes received for `target`, as the UTF-8 text or PNG the browser gets.
pub fn decode(target: Target, bytes: Vec<u8>) -> Vec<u8> {
    match target {
        Target::Png | Target::Utf8 | Target::MimeUtf8 => bytes,
        Target::Latin1 => latin1_to_utf8(&bytes).into_bytes(),
        // TEXT: UTF-8 if it is valid UTF-8 (it almost always is), else Latin-1.
        Target::Text => match String::from_utf8(bytes) {
            Ok(s) => s.into_bytes(),
            Err(e) => latin1_to_utf8(e.as_bytes()).into_bytes(),
        },
    }
}

/// Our UTF-8 text as the bytes of `target`: Latin-1 for `STRING` (characters outside
/// Latin-1 become `?`), UTF-8 for the others (we answer `TEXT` with `UTF8_STRING`).
pub fn encode_text(target: Target, utf8: &[u8]) -> Vec<u8> {
    match target {
        Target::Latin1 => String::from_utf8_lossy(utf8).chars().map(|c| u8::try_from(c).unwrap_or(b'?')).collect(),
        _ => utf8.to_vec(),
    }
}

fn latin1_to_utf8(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_preferred_over_text() {
        assert_eq!(choose(&[Target::Latin1, Target::Utf8, Target::Png]), Some(Target::Png));
    }

    #[test]
    fn utf8_is_preferred_over_latin1() {
        assert_eq!(choose(&[Target::Text, Target::Latin1, Target::Utf8]), Some(Target::Utf8));
    }

    #[test]
    fn an_owner_with_nothing_we_read_gives_no_target() {
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn fallbacks_end_after_text() {
        let mut t = None;
        let mut seen = vec![];
        while let Some(next) = fallback_after(t) {
            seen.push(next);
            t = Some(next);
        }
        assert_eq!(seen, vec![Target::Utf8, Target::Latin1, Target::Text]);
    }

    #[test]
    fn latin1_becomes_utf8() {
        assert_eq!(decode(Target::Latin1, vec![b'c', 0xe9]), "cé".as_bytes());
    }

    #[test]
    fn text_target_keeps_valid_utf8() {
        assert_eq!(decode(Target::Text, "ü€".as_bytes().to_vec()), "ü€".as_bytes());
    }

    #[test]
    fn characters_outside_latin1_become_question_marks_in_string() {
        assert_eq!(encode_text(Target::Latin1, "é€".as_bytes()), vec![0xe9, b'?']);
    }

    #[test]
    fn utf8_targets_get_the_bytes_unchanged() {
        assert_eq!(encode_text(Target::Utf8, "é€".as_bytes()), "é€".as_bytes());
    }
}
