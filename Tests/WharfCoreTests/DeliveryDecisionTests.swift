import Foundation
import Testing
import WharfCore

@Suite struct DeliveryDecisionTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func partner(url: String? = "https://files.example/in", maxAttempts: Int? = nil) throws -> Partner {
        Partner(
            name: try PartnerName("acme"), displayName: "Acme",
            outbound: OutboundSettings(url: try url.map { try OutboundURL(parsing: $0) }, maxAttempts: maxAttempts)
        )
    }

    func transfer(attemptsSinceQueued: Int = 0, queuedAt: Date? = nil) -> Transfer {
        Transfer(
            id: "t1", partner: "acme", filename: "a.xml", size: 3, sha256: String(repeating: "a", count: 64),
            state: .sending, attempts: attemptsSinceQueued + 2, attemptsSinceQueued: attemptsSinceQueued,
            createdAt: now.addingTimeInterval(-7200), queuedAt: queuedAt ?? now.addingTimeInterval(-60)
        )
    }

    @Test func aTransferWithoutPartnerURLOrFileIsKilledWithTheReason() throws {
        let gone = DeliveryDecision.start(transfer(), partner: nil, fileExists: true, outgoingDirectory: "/s/outgoing", now: now)
        #expect(gone == .kill(reason: "partner 'acme' no longer exists"))
        guard case .kill(let noURL) = DeliveryDecision.start(transfer(), partner: try partner(url: nil), fileExists: true, outgoingDirectory: "/s", now: now) else {
            Issue.record("a partner without a URL is attempted")
            return
        }
        #expect(noURL.contains("--url URL"))
        let missing = DeliveryDecision.start(
            transfer(queuedAt: now.addingTimeInterval(-DeliveryDecision.fileArrivalGrace)), partner: try partner(), fileExists: false,
            outgoingDirectory: "/s/outgoing", now: now
        )
        #expect(missing == .kill(reason: "its file is missing from /s/outgoing"))
        let fine = DeliveryDecision.start(transfer(), partner: try partner(), fileExists: true, outgoingDirectory: "/s", now: now)
        #expect(fine == .attempt(partner: try partner(), url: try OutboundURL(parsing: "https://files.example/in")))
    }

    @Test func aTransferJustQueuedWhoseFileIsNotThereYetIsTriedAgainShortly() throws {
        // Its sender commits the transfer, then moves the file into outgoing/: a claim can
        // come between the two.
        let young = transfer(queuedAt: now.addingTimeInterval(-2))
        let early = DeliveryDecision.start(young, partner: try partner(), fileExists: false, outgoingDirectory: "/s/outgoing", now: now)
        #expect(early == .wait(until: now.addingTimeInterval(DeliveryDecision.fileArrivalRetry), reason: "its file is not in /s/outgoing yet"))
        // A file that never comes makes the transfer dead once the grace has passed.
        let late = DeliveryDecision.start(
            young, partner: try partner(), fileExists: false, outgoingDirectory: "/s/outgoing",
            now: young.queuedAt.addingTimeInterval(DeliveryDecision.fileArrivalGrace)
        )
        #expect(late == .kill(reason: "its file is missing from /s/outgoing"))
        // A partner gone or without a URL is not waited for.
        #expect(DeliveryDecision.start(young, partner: nil, fileExists: false, outgoingDirectory: "/s", now: now)
            == .kill(reason: "partner 'acme' no longer exists"))
    }

    @Test func successIsDeliveredWithTheReceiversAnswer() throws {
        let result = DeliveryResult(curlCode: 0, httpStatus: 201, body: "ok")
        let outcome = DeliveryDecision.outcome(of: result, for: transfer(), partner: try partner(), defaults: RetryPolicy(), now: now, random: 0.5)
        #expect(outcome == .delivered(receipt: "ok"))
    }

    @Test func aSignedReceiptIsKeptAndOneWhoseSignatureFailsIsDeadAtOnce() throws {
        let receipt = #"{"received_at":"2026-12-03T10:00:00Z","sha256":"\#(String(repeating: "a", count: 64))"}"#
        var result = DeliveryResult(curlCode: 0, httpStatus: 201, body: receipt, receiptSignature: "h.p.s")
        let signed = DeliveryDecision.outcome(of: result, for: transfer(), partner: try partner(), defaults: RetryPolicy(), now: now, random: 0.5)
        #expect(signed == .delivered(receipt: receipt, signature: "h.p.s"))
        result.signatureProblem = "it signs another receipt than the one answered"
        let forged = DeliveryDecision.outcome(of: result, for: transfer(), partner: try partner(), defaults: RetryPolicy(), now: now, random: 0.5)
        #expect(forged == .dead(reason: "the receiver's receipt signature does not verify: it signs another receipt than the one answered"))
    }

    @Test func aTransientFailureIsRetriedWithinTheJitteredBackoffCountingAttemptsSinceQueued() throws {
        var defaults = RetryPolicy()
        defaults.initialDelay = 10
        let result = DeliveryResult(curlCode: 7, curlError: "Connection refused", httpStatus: nil)
        // The third attempt since queueing: the wait is at most 10 × 2² = 40 s; random 0.5 gives 20 s.
        let outcome = DeliveryDecision.outcome(
            of: result, for: transfer(attemptsSinceQueued: 2), partner: try partner(), defaults: defaults, now: now, random: 0.5
        )
        #expect(outcome == .retry(at: now.addingTimeInterval(20), reason: "curl 7: Connection refused"))
    }

    @Test func retriesEndAtThePartnersMaximumAndAtTheMaximumAgeCountedFromQueueing() throws {
        let result = DeliveryResult(curlCode: 0, httpStatus: 503)
        let exhausted = DeliveryDecision.outcome(
            of: result, for: transfer(attemptsSinceQueued: 2), partner: try partner(maxAttempts: 3), defaults: RetryPolicy(), now: now, random: 0
        )
        #expect(exhausted == .dead(reason: "HTTP 503; gave up after 3 attempts"))

        var defaults = RetryPolicy()
        defaults.maxAge = 3600
        let young = DeliveryDecision.outcome(of: result, for: transfer(), partner: try partner(), defaults: defaults, now: now, random: 0)
        #expect(young == .retry(at: now, reason: "HTTP 503"), "created two hours ago but queued a minute ago")
        let old = DeliveryDecision.outcome(
            of: result, for: transfer(queuedAt: now.addingTimeInterval(-3600)), partner: try partner(), defaults: defaults, now: now, random: 0.5
        )
        guard case .dead(let reason) = old else {
            Issue.record("a transfer past its maximum age is retried: \(old)")
            return
        }
        #expect(reason.hasPrefix("HTTP 503; gave up: the next attempt would come after the maximum age of 1 h"))
    }

    @Test func aPermanentFailureIsDeadAtOnceAndAnAttemptThatWasNotSentIsRetried() throws {
        let pinned = DeliveryResult(curlCode: 90, httpStatus: nil)
        guard case .dead = DeliveryDecision.outcome(of: pinned, for: transfer(), partner: try partner(), defaults: RetryPolicy(), now: now, random: 0) else {
            Issue.record("a pin mismatch is retried")
            return
        }
        let unsent = DeliveryResult.notSent("libcurl could not be loaded")
        let outcome = DeliveryDecision.outcome(of: unsent, for: transfer(), partner: try partner(), defaults: RetryPolicy(), now: now, random: 0)
        #expect(outcome == .retry(at: now, reason: "not sent: libcurl could not be loaded"))
        #expect(unsent.curlCode == nil, "no made-up curl code")
    }
}

@Suite struct HandshakeFailureTests {
    @Test(arguments: [
        ("PEER_DID_NOT_RETURN_A_CERTIFICATE", HandshakeFailure.noCertificate),
        ("CERTIFICATE_VERIFY_FAILED", .certificateRejected),
        ("TLSV1_ALERT_UNKNOWN_CA", .certificateRejected),
        ("UNSUPPORTED_PROTOCOL", .noCommonProtocol),
        ("NO_SHARED_CIPHER", .noCommonProtocol),
        ("HTTP_REQUEST", .notTLS),
        ("SOMETHING_NEW", .other),
    ])
    func openSSLReasonsMapToFewFixedWords(reason: String, expected: HandshakeFailure) {
        #expect(HandshakeFailure(openSSLReason: reason) == expected)
    }
}
