use super::visible_text;

#[test]
fn placeholder() {
    assert_eq!(visible_text("Hello\n\n> quoted"), "Hello");
}
