use super::*;
use crate::model::{Address, Header};

const TICKET: &str = "2026112310000012";
const AGENT: &str = "agent1@corp.example";
const OURS: &str = "mx.helpdesk.example";

fn signer() -> Signer {
    Signer::from_key([7; 32])
}

fn own() -> Vec<String> {
    vec!["support@helpdesk.example".to_string(), "billing@helpdesk.example".to_string()]
}

fn mail_from(from: &str) -> InboundMail {
    InboundMail { from: Some(Address::new(Some("Agent One"), from)), ..Default::default() }
}

fn with_headers(mut mail: InboundMail, headers: &[(&str, &str)]) -> InboundMail {
    mail.headers = headers.iter().map(|(n, v)| Header { name: n.to_string(), value: v.to_string() }).collect();
    mail
}

fn prove(mail: &InboundMail, agent: &str) -> Option<AgentProof> {
    let (signer, own) = (signer(), own());
    prove_agent(mail, agent, &AuthContext { signer: &signer, own_addresses: &own, authserv_id: Some(OURS) })
}

fn by(proof: Proof) -> Option<AgentProof> {
    let ticket_number = (proof != Proof::Authenticated).then(|| TICKET.to_string());
    Some(AgentProof { ticket_number, proof })
}

#[test]
fn reply_address_proves_the_agent_in_to_cc_or_delivered_to() {
    let addr = signer().reply_address("support@helpdesk.example", TICKET, AGENT);
    let mut to = mail_from("Agent1@Corp.Example");
    to.to = vec![Address::new(None, &addr.to_uppercase())];
    assert_eq!(prove(&to, AGENT), by(Proof::ReplyAddress));
    let mut cc = mail_from(AGENT);
    cc.to = vec![Address::new(None, "someone@else.example")];
    cc.cc = vec![Address::new(None, &addr)];
    assert_eq!(prove(&cc, AGENT), by(Proof::ReplyAddress));
    let mut delivered = mail_from(AGENT);
    delivered.delivered_to = vec![format!(" {addr} ")];
    assert_eq!(prove(&delivered, AGENT), by(Proof::ReplyAddress));
    let billing = signer().reply_address("billing@helpdesk.example", TICKET, AGENT);
    let mut queue = mail_from(AGENT);
    queue.to = vec![Address::new(None, &billing)];
    assert_eq!(prove(&queue, AGENT), by(Proof::ReplyAddress), "any of our addresses");
}

#[test]
fn agent_message_id_in_references_or_in_reply_to_proves_the_agent() {
    let id = signer().agent_message_id(TICKET, AGENT, "helpdesk.example");
    let mut refs = mail_from(AGENT);
    refs.references = vec!["unrelated@x".into(), id.clone(), "newest@y".into()];
    assert_eq!(prove(&refs, AGENT), by(Proof::SignedReference));
    let mut irt = mail_from(AGENT);
    irt.in_reply_to = vec![format!("<{id}>")];
    assert_eq!(prove(&irt, AGENT), by(Proof::SignedReference));
}

/// The `Received` header our MTA writes when it takes a mail in; our A-R headers sit above it.
const OUR_HOP: &str = "from mail.corp.example by mx.helpdesk.example (Postfix) with ESMTPS id 4Xy";

#[test]
fn trusted_authentication_results_prove_the_agent() {
    let cases = [
        "mx.helpdesk.example; dkim=pass header.d=corp.example header.s=sel header.b=AbCd+/==",
        "mx.helpdesk.example; dkim=pass (2048-bit key; unprotected) header.i=@Corp.Example.",
        "mx.helpdesk.example; dkim=pass header.i=agent1@corp.example",
        "mx.helpdesk.example 1; spf=pass smtp.mailfrom=corp.example; \
         dmarc=pass (p=reject dis=none) header.from=corp.example",
        "mx.helpdesk.example;\r\n\tdkim = pass header.d = \"corp.example\"",
        "mx.helpdesk.example; dkim=fail header.d=corp.example; dkim/1=PASS header.d=corp.example",
        "\"mx.helpdesk.example\"; DKIM=Pass Header.D=corp.example",
    ];
    for value in cases {
        let mail = with_headers(mail_from(AGENT), &[("Authentication-Results", value), ("Received", OUR_HOP)]);
        assert_eq!(prove(&mail, AGENT), by(Proof::Authenticated), "{value}");
    }
}

#[test]
fn opendkim_and_opendmarc_headers_above_our_received_both_count() {
    let mail = with_headers(
        mail_from(AGENT),
        &[
            ("Return-Path", "<agent1@corp.example>"),
            ("Received", "from mx.helpdesk.example by store.helpdesk.example (Dovecot) with LMTP"),
            ("Authentication-Results", "mx.helpdesk.example; dmarc=none header.from=corp.example"),
            ("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=corp.example"),
            ("Received", "from mail.corp.example by mx.helpdesk.example (Postfix)"),
        ],
    );
    assert_eq!(prove(&mail, AGENT), by(Proof::Authenticated));
}

#[test]
fn nothing_proves_a_forged_from() {
    let s = signer();
    let agent2 = "agent2@corp.example";
    let plain_customer_id = s.message_id(TICKET, "helpdesk.example");
    let reply = s.reply_address("support@helpdesk.example", TICKET, AGENT);
    let other_agents_reply = s.reply_address("support@helpdesk.example", TICKET, agent2);
    let other_agents_id = s.agent_message_id(TICKET, agent2, "helpdesk.example");
    let agent_id = s.agent_message_id(TICKET, AGENT, "helpdesk.example");
    let (local, domain) = reply.rsplit_once('@').unwrap();
    let flip = |s: &str| {
        let last = if s.ends_with('0') { '1' } else { '0' };
        format!("{}{last}", &s[..s.len() - 1])
    };
    let tampered_reply = format!("{}@{domain}", flip(local));
    let (id_local, id_domain) = agent_id.rsplit_once('@').unwrap();
    let tampered_id = format!("{}@{id_domain}", flip(id_local));
    let foreign_domain = format!("{local}@evil.example");
    let foreign_base = reply.replacen("support+", "sales+", 1);
    let double_plus = reply.replacen("support+", "support+x+", 1);

    let to = |addr: &str| {
        let mut m = mail_from(AGENT);
        m.to = vec![Address::new(None, addr)];
        m
    };
    let refs = |id: &str| {
        let mut m = mail_from(AGENT);
        m.references = vec![id.to_string()];
        m
    };
    let ar = |headers: &[(&str, &str)]| with_headers(mail_from(AGENT), headers);
    let cases: Vec<(&str, InboundMail)> = vec![
        ("bare forged From", mail_from(AGENT)),
        ("plain support address", to("support@helpdesk.example")),
        ("plain customer-facing Message-ID", refs(&plain_customer_id)),
        ("tampered reply address", to(&tampered_reply)),
        ("tampered agent Message-ID", refs(&tampered_id)),
        ("another agent's reply address", to(&other_agents_reply)),
        ("another agent's Message-ID", refs(&other_agents_id)),
        ("reply address on a foreign domain", to(&foreign_domain)),
        ("reply address on a base that is not ours", to(&foreign_base)),
        ("extra plus tag before the ticket", to(&double_plus)),
        ("reply address only in Reply-To", {
            let mut m = mail_from(AGENT);
            m.reply_to = vec![Address::new(None, &reply)];
            m
        }),
        (
            "A-R from another authserv-id",
            ar(&[("Authentication-Results", "mx.evil.example; dkim=pass header.d=corp.example")]),
        ),
        (
            "A-R id with our id as prefix",
            ar(&[("Authentication-Results", "mx.helpdesk.example.evil; dkim=pass header.d=corp.example")]),
        ),
        (
            "A-R id differing in case",
            ar(&[("Authentication-Results", "MX.helpdesk.example; dkim=pass header.d=corp.example")]),
        ),
        (
            "A-R with our id, dkim=fail",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dkim=fail header.d=corp.example")]),
        ),
        (
            "A-R with our id, dkim pass for another domain",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=evil.example")]),
        ),
        (
            "A-R with our id, dkim pass for a subdomain",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=mail.corp.example")]),
        ),
        (
            "A-R with our id, dkim pass without domain",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dkim=pass")]),
        ),
        (
            "A-R with our id, spf pass",
            ar(&[("Authentication-Results", "mx.helpdesk.example; spf=pass smtp.mailfrom=corp.example")]),
        ),
        (
            "A-R with our id, dmarc pass for another domain",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dmarc=pass header.from=evil.example")]),
        ),
        ("A-R with our id, none", ar(&[("Authentication-Results", "mx.helpdesk.example; none")])),
        (
            "pass only inside a comment",
            ar(&[("Authentication-Results", "mx.helpdesk.example; dkim=fail (dkim=pass header.d=corp.example)")]),
        ),
        (
            "pass only in the reason",
            ar(&[(
                "Authentication-Results",
                "mx.helpdesk.example; dkim=fail reason=\"; dkim=pass header.d=corp.example\"",
            )]),
        ),
        (
            "forged A-R with our id below our Received",
            ar(&[
                ("Authentication-Results", "mx.helpdesk.example; dkim=none"),
                ("Received", "from mail.evil.example by mx.helpdesk.example (Postfix)"),
                ("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=corp.example"),
            ]),
        ),
        (
            "our A-R fails, another id passes",
            ar(&[
                ("Authentication-Results", "mx.helpdesk.example; dkim=fail header.d=corp.example"),
                ("Authentication-Results", "mx.evil.example; dkim=pass header.d=corp.example"),
            ]),
        ),
    ];
    for (name, mail) in cases {
        assert_eq!(prove(&mail, AGENT), None, "{name}");
    }
}

#[test]
fn proof_for_one_agent_does_not_hold_when_from_is_someone_else() {
    let mut mail = mail_from("customer@corp.example");
    mail.to = vec![Address::new(None, &signer().reply_address("support@helpdesk.example", TICKET, AGENT))];
    assert_eq!(prove(&mail, AGENT), None, "From must be the agent");
    let mut no_from = mail.clone();
    no_from.from = None;
    assert_eq!(prove(&no_from, AGENT), None);
    assert_eq!(prove(&mail, ""), None);
}

#[test]
fn authentication_results_are_ignored_without_an_authserv_id() {
    let mail = with_headers(
        mail_from(AGENT),
        &[("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=corp.example")],
    );
    let (signer, own) = (signer(), own());
    let ctx = AuthContext { signer: &signer, own_addresses: &own, authserv_id: None };
    assert_eq!(prove_agent(&mail, AGENT, &ctx), None);
    let empty = AuthContext { authserv_id: Some(""), ..ctx };
    let no_id = with_headers(mail_from(AGENT), &[("Authentication-Results", "; dkim=pass header.d=corp.example")]);
    assert_eq!(prove_agent(&no_id, AGENT, &empty), None);
}

#[test]
fn reply_address_wins_over_references() {
    let s = signer();
    let mut mail = mail_from(AGENT);
    mail.to = vec![Address::new(None, &s.reply_address("support@helpdesk.example", TICKET, AGENT))];
    mail.references = vec![s.agent_message_id("2026112310000020", AGENT, "helpdesk.example")];
    assert_eq!(prove(&mail, AGENT), by(Proof::ReplyAddress));
}

#[test]
fn authentication_results_parse() {
    let r = parse_authentication_results(
        "mx.example (comment; with \\) escape) 1 ; dkim=pass (good (nested) sig) header.d=a.example header.b=x=y= ; \
         dmarc = fail reason=\"p=reject; really\" header.from = \"b.example\"; garbage; none",
    )
    .unwrap();
    assert_eq!(r.authserv_id, "mx.example");
    let info = |method: &str, result: &str, props: &[(&str, &str)]| ResInfo {
        method: method.into(),
        result: result.into(),
        props: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    assert_eq!(
        r.results,
        vec![
            info("dkim", "pass", &[("header.d", "a.example"), ("header.b", "x=y=")]),
            info("dmarc", "fail", &[("reason", "p=reject; really"), ("header.from", "b.example")]),
        ]
    );
}

#[test]
fn garbage_never_panics() {
    let values = [
        "",
        ";",
        ";;;",
        "(",
        ")",
        "\"",
        "\"unterminated",
        "mx.helpdesk.example; (",
        "mx.helpdesk.example; dkim=",
        "mx.helpdesk.example; =pass",
        "mx.helpdesk.example; dkim=\"pass",
        "mx.helpdesk.example; dkim=pass header.d=\"",
        "mx.helpdesk.example; dkim=pass header.d",
        "mx.helpdesk.example; dkim=pass header.i=@",
        "\\",
        "(\\",
        "mx.helpdesk.example; dkim=pass header.d=\u{0}é.",
        "\u{feff}mx.helpdesk.example; dkim=pass header.d=corp.example",
    ];
    for value in values {
        let _ = parse_authentication_results(value);
        let mail = with_headers(mail_from(AGENT), &[("Authentication-Results", value)]);
        assert_eq!(prove(&mail, AGENT), None, "{value:?}");
    }
    let addresses = ["", "@", "+@", "<>", "support+@helpdesk.example", "+T1-00@helpdesk.example", "a+b+c@@", "é+é@é"];
    for addr in addresses {
        let mut mail = mail_from(AGENT);
        mail.to = vec![Address::new(None, addr)];
        mail.delivered_to = vec![addr.to_string()];
        mail.references = vec![addr.to_string()];
        assert_eq!(prove(&mail, AGENT), None, "{addr:?}");
        for agent in ["", "@", "no-at-sign", "a@"] {
            let _ = prove(&mail, agent);
        }
    }
}

/// Issue 10 item 9, one test per forged placement. Each mail says `dkim=pass` for the agent's domain in an
/// `Authentication-Results` header claiming our authserv-id, written by the sender because the MTA did not strip it.
fn forged_pass() -> (&'static str, &'static str) {
    ("Authentication-Results", "mx.helpdesk.example; dkim=pass header.d=corp.example header.s=forged")
}

#[test]
fn forged_authentication_results_topmost_above_our_own_proves_nothing() {
    // The forged header directly on top of our MTA's genuine `none`: one method reported twice.
    let mail = with_headers(
        mail_from(AGENT),
        &[forged_pass(), ("Authentication-Results", "mx.helpdesk.example; dkim=none"), ("Received", OUR_HOP)],
    );
    assert_eq!(prove(&mail, AGENT), None);
    // Alone on top of a mail that no MTA of ours ever received (no Received header at all).
    assert_eq!(prove(&with_headers(mail_from(AGENT), &[forged_pass()]), AGENT), None);
}

#[test]
fn forged_authentication_results_under_a_forged_received_proves_nothing() {
    let mail = with_headers(
        mail_from(AGENT),
        &[
            ("Received", "from mx.helpdesk.example by store.helpdesk.example (Dovecot) with LMTP"),
            ("Authentication-Results", "mx.helpdesk.example; dmarc=none header.from=corp.example"),
            ("Received", OUR_HOP),
            ("Received", "from corp.example by mx.helpdesk.example (Postfix) with ESMTPS"),
            forged_pass(),
        ],
    );
    assert_eq!(prove(&mail, AGENT), None);
    // Our MTA added nothing but another filter's header on top: the block is not ours, nothing below counts.
    let foreign_on_top = with_headers(
        mail_from(AGENT),
        &[("Authentication-Results", "spamfilter.example; spf=pass"), forged_pass(), ("Received", OUR_HOP)],
    );
    assert_eq!(prove(&foreign_on_top, AGENT), None);
}

#[test]
fn forged_authentication_results_above_a_genuine_fail_proves_nothing() {
    let mail = with_headers(
        mail_from(AGENT),
        &[
            forged_pass(),
            ("Authentication-Results", "mx.helpdesk.example; dkim=fail header.d=corp.example"),
            ("Received", OUR_HOP),
        ],
    );
    assert_eq!(prove(&mail, AGENT), None);
}
