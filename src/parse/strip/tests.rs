//! Table-driven cases: one per language and per client shape, each also run with CRLF line endings.

use super::visible_text;

fn check(cases: &[(&str, &str, &str)]) {
    for (name, input, want) in cases {
        assert_eq!(visible_text(input), *want, "{name}");
        let crlf = input.replace('\n', "\r\n");
        assert_eq!(visible_text(&crlf), *want, "{name} (CRLF)");
    }
}

#[test]
fn attribution_lines_in_many_languages() {
    let q = "\n\n> quoted\n> more";
    let cases: Vec<(&str, String)> = vec![
        ("en", "On Mon, Feb 1, 2016 at 4:58 AM, Some One <foo@bar.com> wrote:".into()),
        ("en apple", "On 28 Jan 2016, at 19:04, Some One wrote:".into()),
        ("en bare", "Some One <info@example.org> wrote:".into()),
        ("de", "Am 03.02.2016 3:35 nachm. schrieb Max Mustermann <noreply@example.org>:".into()),
        ("de gmail", "Max Mustermann <max@example.org> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:".into()),
        ("fr", "Le 4 janv. 2016 19:03, \"Neil\" <info@example.org> a écrit :".into()),
        ("es", "El jueves, 21 de noviembre de 2013, codinghorror escribió:".into()),
        ("it", "Il 26 marzo 2016 alle 13.16 Sam <info@example.org> ha scritto:".into()),
        ("nl", "Op 2 feb. 2015 om 05:28 heeft Sky <info@example.org> het volgende geschreven:".into()),
        ("pl", "W dniu 14.07.2015 o 00:25 Michael <m@example.org> pisze:".into()),
        ("pl napisał", "Dnia 14 lip 2015 o godz. 00:25 Michael <m@example.org> napisał(a):".into()),
        ("pt", "Em 2 de fevereiro de 2015 10:58, discourse <info@example.org> escreveu:".into()),
        ("ru", "20 окт. 2016 г. 19:37 пользователь \"Rafael\" <meta@example.org> написал:".into()),
        ("uk", "30 серп. 2016 р. 20:45 \"Arpit\" <no-reply@example.com> пише:".into()),
        ("sv", "Den 15 juni 2016 kl. 20:42 skrev Jeff <info@example.org>:".into()),
        ("no", "Den 15. jun. 2016 kl. 20.42 skrev Jeff Atwood <info@example.org>:".into()),
        ("da", "Den 15. jun. 2016 kl. 20.42 skrev Jeff Atwood <info@example.org>:".into()),
        ("zh", "在 2016年12月12日，下午8:45，Erlend <meta@example.com> 写道：".into()),
        ("ja", "2016/12/12 20:45 Erlend <meta@example.com>:".into()),
        ("gmail date first", "2013/7/20 sam via Discourse Meta <info@example.org>".into()),
        ("gmail gmt", "2016-03-03 17:21 GMT+01:00 Some One".into()),
        ("dashed", "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam <info@example.org> wrote ----".into()),
        ("ru mail", "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:".into()),
        ("wrapped 2", "On Mon, Feb 1, 2016 at 6:32 PM, Jeff Atwood <info@example.org>\nwrote:".into()),
        ("wrapped <", "On Thu, Jun 20, 2013 at 4:18 PM, matt2 via Meta <\ninfo@example.org> wrote:".into()),
        ("wrapped 3", "Le 4 janv. 2016 19:03, \"Neil Lalonde\"\n<info@example.org>\na écrit :".into()),
        ("wrapped de", "Erlend <meta@example.com> schrieb am Di., 16. Aug. 2016\num 12:52 Uhr:".into()),
    ];
    for (name, attribution) in cases {
        let input = format!("Thanks, that works.\n\n{attribution}{q}\n");
        check(&[(name, &input, "Thanks, that works.")]);
        let tight = format!("Thanks, that works.\n{attribution}\n\nQuoted without markers.\n");
        check(&[(name, &tight, "Thanks, that works.")]);
    }
}

#[test]
fn outlook_and_forward_blocks() {
    check(&[
        (
            "original message",
            "Fixed now.\n\n-----Original Message-----\nFrom: A <a@example.org>\nSent: Monday\nTo: B\nSubject: x\n\nold",
            "Fixed now.",
        ),
        (
            "ursprüngliche nachricht",
            "Gruß\n\n-----Ursprüngliche Nachricht-----\nVon: A\nGesendet: Montag\nAn: B\nBetreff: x\n\nalt",
            "Gruß",
        ),
        ("underscore separator", "Reply\n________________________________\nFrom: A\nSent: x\n\nold", "Reply"),
        ("bare header block", "Reply\n\nFrom: A <a@example.org>\nSent: x\nTo: y\nSubject: z\n\nold", "Reply"),
        ("bold headers", "Reply\n\n*From:* A\n*Sent:* x\n*To:* y\n*Subject:* z\n\nold", "Reply"),
        ("fr headers", "Merci\n\nDe : A\nEnvoyé : lundi\nÀ : B\nObjet : x\n\nvieux", "Merci"),
        ("es headers", "Gracias\n\nDe: A\nEnviado: lunes\nPara: B\nAsunto: x\n\nviejo", "Gracias"),
        ("it headers", "Grazie\n\nDa: A\nInviato: lunedì\nA: B\nOggetto: x\n\nvecchio", "Grazie"),
        ("nl headers", "Dank\n\nVan: A\nVerzonden: maandag\nAan: B\nOnderwerp: x\n\noud", "Dank"),
        ("sv headers", "Tack\n\nFrån: A\nSkickat: den 5 juni\nTill: B\nÄmne: x\n\ngammal", "Tack"),
        ("pl headers", "Dzięki\n\nOd: A\nWysłano: poniedziałek\nDo: B\nTemat: x\n\nstary", "Dzięki"),
        ("ru headers", "Спасибо\n\nОт: A\nОтправлено: понедельник\nКому: B\nТема: x\n\nстарое", "Спасибо"),
        ("zh headers", "谢谢\n\n发件人: A\n发送时间: 2016年\n收件人: B\n主题: x\n\n旧", "谢谢"),
        ("gmail forward", "FYI\n\n---------- Forwarded message ---------\nFrom: A\nDate: x\n\nbody", "FYI"),
        ("apple forward", "FYI\n\nBegin forwarded message:\n\nFrom: A\nSubject: x\n\nbody", "FYI"),
        (
            "forward without comment shows the forwarded text",
            "---------- Forwarded message ----------\nFrom: A <a@example.org>\nDate: x\nSubject: a subject\nthat wraps\nTo: b@example.org\n\n\nThe forwarded text.",
            "The forwarded text.",
        ),
        ("lone header-like line is text", "To: whom it may concern\n\nhello", "To: whom it may concern\n\nhello"),
    ]);
}

#[test]
fn signatures() {
    check(&[
        ("sig dash", "Hello\n\n-- \nJohn\nACME", "Hello"),
        ("sig dash no space", "Hello\n--\nJohn", "Hello"),
        ("iphone", "Hello\n\nSent from my iPhone", "Hello"),
        ("blackberry", "Hello\n\nSent from my Verizon Wireless BlackBerry", "Hello"),
        ("apology", "Hello\n\nSent from my cell, please excuse any typos.", "Hello"),
        (
            "not a signature",
            "Hello\n\nSent from my desk, is much easier then my mobile phone.",
            "Hello\n\nSent from my desk, is much easier then my mobile phone.",
        ),
        ("fr mobile", "Bonjour\n\nEnvoyé de mon iPhone", "Bonjour"),
        ("de mobile", "Hallo\n\nVon meinem iPhone gesendet", "Hallo"),
        ("es mobile", "Hola\n\nEnviado desde mi iPhone", "Hola"),
        ("zh mobile", "你好\n\n从我的 iPhone 发送\n發自我的 iPhone\n從我的 iPhone 傳送", "你好"),
        ("outlook mobile", "Thanks\n\nGet Outlook for Android<https://aka.ms/ghei36>", "Thanks"),
        ("dash name", "Question?\n\n-Abhishek Kona\n\n\n____\nlist footer", "Question?"),
        ("underline is a heading", "Title\n=====\n\nBody", "Title\n=====\n\nBody"),
        ("mid-line dashes", "A fix -- not a signature.\n\nbye", "A fix -- not a signature.\n\nbye"),
    ]);
}

#[test]
fn quotes_and_layout() {
    check(&[
        ("trailing quote", "Answer\n\n> question", "Answer"),
        ("inline keeps context", "> question\n\nAnswer", "> question\n\nAnswer"),
        ("quote only", "> only a quote", "> only a quote"),
        ("quoted reply chain only", "> On Thu, Apr 30, 2020 at 10:07 AM, x <x@example.com> wrote:\n>> hi", ""),
        ("nothing", "", ""),
        ("blank", " \n\n \t\n", ""),
        ("trims", "\n\n  Hello  \nworld   \n\n\n", "  Hello\nworld"),
        (
            "reply below history",
            "On Mon, Feb 1, 2016 at 4:58 AM, A <a@example.org> wrote:\n\n> q\n\nMy answer.",
            "My answer.",
        ),
        (
            "not greedy on",
            "On this day\n\nI wrote something.\n\nOn 28 Jan 2016, at 19:04, A wrote:\n\n> q",
            "On this day\n\nI wrote something.",
        ),
        (
            "prose wrote",
            "He wrote:\n\n> a quote from a book\n\nWhat do you think?",
            "He wrote:\n\n> a quote from a book\n\nWhat do you think?",
        ),
    ]);
}

/// Work per line is bounded: on hostile shapes the multi-line passes do at most a constant amount of work per line,
/// so ten times the lines is (about) ten times the work. Counted, not timed (timing is `benches/strip.rs`).
#[test]
fn multi_line_work_grows_linearly_on_hostile_shapes() {
    let shapes: [fn(usize) -> String; 8] = [
        |n| "> x\n".repeat(n),
        |n| "-Abhishek Kona\n\n".repeat(n / 2),
        |n| "On Mon, 1 Feb 2016, A <a@example.org>\n".repeat(n),
        |n| "On\n".repeat(n / 2) + &"x <a@b.c>\n".repeat(n / 2),
        |n| "From: a@example.org\nhello\n".repeat(n / 2),
        |n| "On this day we wrote:\n".repeat(n),
        |n| "\r\r\n\u{feff}>".repeat(n),
        // The fuzzer's slow input: a Spanish attribution, then its broken tail repeated (every line may end one).
        |n| {
            "El 3 mar 2025, a las 10:12, support <support@example.ocribió:\n".to_string()
                + &" las 10:12, support <support@example.ocribió:\n".repeat(n)
        },
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let work = |n: usize| {
            let input = shape(n);
            let before = super::steps();
            let _ = visible_text(&input);
            super::steps() - before
        };
        let (small, large) = (work(1_000), work(10_000));
        assert!(large <= 12 * small.max(1_000), "shape {i}: {small} steps for 1k lines, {large} for 10k");
        assert!(large <= 20 * 10_000, "shape {i}: {large} steps for 10k lines");
    }
}

#[test]
fn attributions_without_colon_split_or_in_more_languages() {
    let cases = [
        ("no colon", "On Mon, Feb 1, 2016 at 4:58 AM, Some One <foo@bar.com> wrote"),
        ("fr split verb", "Le lun. 1 févr. 2016 à 16:58, Some One <foo@bar.com> a\nécrit :"),
        ("pt-br", "Em seg., 1 de fev. de 2016 às 16:58, Fulano <f@example.com> escreveu:"),
        ("ro", "La 01.02.2016 16:58, Ion Pop <i@example.ro> a scris:"),
        ("ca", "El dl., 1 febr. 2016 a les 16:58, Joan <j@example.cat> va escriure:"),
        ("es no colon", "El lun., 1 feb. 2016 a las 16:58, Ana (<a@example.es>) escribió"),
        ("ja", "2016年2月1日(月) 16:58 Taro Yamada <t@example.jp>:"),
        ("ko", "2016년 2월 1일 (월) 오후 4:58, Kim <k@example.kr>님이 작성:"),
        ("zh", "在 2016年2月1日 16:58，张三 <z@example.cn> 写道："),
        ("tr", "1 Şub 2016 Pzt, 16:58 tarihinde Ali <a@example.com.tr> şunu yazdı:"),
        ("el", "Στις Δευ, 1 Φεβ 2016 στις 16:58, ο/η Nikos <n@example.gr> έγραψε:"),
        ("cs", "Dne po 1. 2. 2016 16:58 Jan <j@example.cz> napsal(a):"),
        ("vi", "Vào 16:58 Th 2, 1 thg 2, 2016 Minh <m@example.vn> đã viết:"),
        ("fi", "ma 1. helmik. 2016 klo 16.58 Matti <m@example.fi> kirjoitti:"),
        ("is", "Þann mán., 1. feb. 2016 kl. 16:58 skrifaði Jón <j@example.is>:"),
    ];
    for (name, attribution) in cases {
        let input = format!("Thanks, that works.\n\n{attribution}\n\n> quoted\n> more\n");
        check(&[(name, &input, "Thanks, that works.")]);
    }
    // Prose ending in "wrote" without an opener, a date or an address stays.
    check(&[("prose", "Great, that is what Anna wrote\n\nBye", "Great, that is what Anna wrote\n\nBye")]);
}

#[test]
fn original_message_separators_in_more_languages() {
    for sep in [
        "-----Opprinnelig melding-----",
        "-----Oprindelig meddelelse-----",
        "-----Ursprungligt meddelande-----",
        "-----Alkuperäinen viesti-----",
        "-------- Original-Nachricht --------",
        "-------- Message original --------",
        "---- Původní zpráva ----",
        "------------------ 原始邮件 ------------------",
        "-----元のメッセージ-----",
        "--- Original Message ---",
        "Original Message",
        "-------- Doorgestuurd bericht --------",
    ] {
        let input = format!("Svar nedenfor.\n\n{sep}\nFra: A\nSendt: 1. feb\nTil: B\nEmne: x\n\ngammel tekst\n");
        check(&[(sep, &input, "Svar nedenfor.")]);
    }
}

#[test]
fn mobile_signatures_in_many_languages_and_apps() {
    for sig in [
        "Sent from Yahoo Mail on Android",
        "Sent with Proton Mail secure email.",
        "Sent from Mail for Windows",
        "Sent from my Galaxy",
        "Get Outlook for iOS",
        "Gesendet von meinem Android-Smartphone",
        "Von meinem iPad gesendet",
        "Envoyé depuis mon appareil mobile",
        "Enviado do meu iPhone",
        "Enviado desde mi Samsung Galaxy",
        "Inviato da iPhone",
        "Verstuurd vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Sendt fra min iPhone",
        "Lähetetty iPhonesta",
        "Wysłane z iPhone'a",
        "Odesláno z iPhonu",
        "Отправлено с iPhone",
        "Надіслано з iPhone",
        "Στάλθηκε από το iPhone μου",
        "iPhone'umdan gönderildi",
        "Trimis de pe iPhone-ul meu",
        "Gửi từ iPhone của tôi",
        "Dikirim dari iPhone saya",
        "iPhoneから送信",
        "iPhone에서 보냄",
        "发自我的iPhone",
    ] {
        let input = format!("Works for me.\n\n{sig}\n");
        check(&[(sig, &input, "Works for me.")]);
    }
}

/// Regression: a fuzzed body of ~800 Spanish attribution-like lines took 6 s (debug) because `\b` made every regex
/// fall back to the PikeVM on non-ASCII text. The work was linear in lines but each byte cost ~30 times more.
#[test]
fn no_unicode_word_boundary_that_forces_the_slow_regex_engine() {
    let mut patterns = super::lines::patterns();
    assert!(patterns.len() >= 13);
    patterns.extend(super::signoff::patterns());
    for pattern in patterns {
        let without_escaped_backslashes = pattern.replace("\\\\", "");
        assert!(
            !without_escaped_backslashes.contains("\\b") && !without_escaped_backslashes.contains("\\B"),
            "pattern uses a Unicode word boundary: {pattern}"
        );
    }
}

#[test]
fn closing_sign_off_blocks() {
    let reply = "It works now.";
    for block in [
        "Best regards,\nJane Doe\nSenior Accountant | ACME GmbH\n+49 30 1234567",
        "Kind regards\n\nJane Doe\n\nACME GmbH",
        "Regards,\nJane Doe\njane.doe@acme.example",
        "Mit freundlichen Grüßen\nMax Mustermann\nBeispiel AG\nTel.: +49 30 9876543",
        "Viele Grüße\nMax\nwww.beispiel.de",
        "Cordialement,\nClaire Martin\nResponsable informatique",
        "Saludos,\nLucía\nDepartamento de Compras",
        "Cordiali saluti\nMario Rossi\nUfficio Acquisti",
        "Met vriendelijke groet,\nJan Jansen\nAfdeling Inkoop",
        "Med vänlig hälsning\nAnna Andersson\n+46 8 123 456 78",
        "Pozdrawiam,\nJan Kowalski\nDział IT",
        "С уважением,\nИван Петров\n+7 495 123-45-67",
        "よろしくお願いします。\n山田太郎\n株式会社サンプル",
        "此致敬礼\n张伟\n技术部",
        "Thanks,\nJane Doe\nACME GmbH | Accounts",
    ] {
        let tight = format!("{reply}\n{block}\n");
        check(&[(block, &tight, reply)]);
        let input = format!("{reply}\n\n{block}\n");
        check(&[(block, &input, reply)]);
    }
    // When unsure, keep: each of these ends as it came in.
    for kept in [
        // Only a name below: the trimmer corpus keeps "Thanks,\nSome One" and "Best regards,\n\n//Jef".
        "It works now.\n\nThanks,\nSome One",
        "It works now.\n\nBest regards,\n\n//Jef",
        "It works now.\n\nCheers",
        // A sentence below the valediction, a P.S., a question.
        "It works now.\n\nBest,\nJane\nACME\nI attached the log from this morning.",
        "It works now.\n\nBest,\nJane\nACME\n\nP.S. the printer is on floor 2",
        "It works now.\n\nRegards,\nJane\nACME\nCan you close the ticket?",
        // "Thank you!" is a sentence of the reply.
        "It works now.\n\nThank you!\nJane Doe\nACME GmbH",
        // A valediction followed by more paragraphs.
        "Regards,\nJane\nACME\n\nOne more thing: the PDF still shows the old logo, please check that as well.",
        // Nothing above the block.
        "Best regards,\nJane Doe\nACME GmbH\n+49 30 1234567",
        // "Regards" inside a sentence, or wrapped into one.
        "Please give my regards to the team.\nJane Doe\nACME GmbH",
        "It works now.\nRegards\nto everyone who helped,\nJane",
        // A list, not a sign-off: under a colon, or a bare word right under a line that is no finished sentence.
        "Ranking of the three plans:\nBest\nWorst\nAverage",
        "Ranking of the three plans\nBest\nPlan B\nPlan C",
        // More lines than a sign-off block has.
        "It works now.\n\nBest,\nA\nB\nC\nD\nE\nF\nG",
    ] {
        check(&[(kept, kept, kept)]);
    }
    // A sign-off above the quoted history goes with it; quoted lines are never part of a block.
    check(&[
        (
            "above history",
            "Done.\n\nBest regards,\nJane Doe\nACME GmbH\n\nOn Mon, 1 Dec 2025 at 09:12, S <s@example.org> wrote:\n> q",
            "Done.",
        ),
        (
            "quoted block",
            "Done.\n\nBest regards,\n> Jane Doe\n> ACME GmbH\nJane",
            "Done.\n\nBest regards,\n> Jane Doe\n> ACME GmbH\nJane",
        ),
    ]);
}

/// The sign-off pass looks at a bounded tail: a body of a million valediction and name lines costs the same per line
/// as any other.
#[test]
fn sign_off_pass_looks_only_at_the_tail() {
    let body = "Best regards,\nJane Doe\nACME GmbH\n".repeat(20_000);
    let input = format!("It works now.\n\n{body}");
    let out = visible_text(&input);
    assert!(out.starts_with("It works now.") && out.len() < input.len(), "the last block goes, the rest stays");
    assert!(out.ends_with("ACME GmbH"), "only the last block goes");
}
