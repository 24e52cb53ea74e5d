import Foundation
import NIOHTTP1
import Testing
import WharfCore
@testable import WharfListener

/// The upload state machine alone, without sockets: every outcome of a request, every
/// refusal and its precedence, and the audit entry each one leaves.
@Suite struct UploadStateMachineTests {
    typealias Machine = UploadStateMachine
    static let digestOfABC = "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:"
    static let sha256OfABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func head(
        _ method: HTTPMethod = .PUT, _ uri: String = "/inbox/a.xml", length: String? = "3", chunked: Bool = false,
        digest: String? = nil, key: String? = nil, expect: Bool = false
    ) -> Machine.Head {
        Machine.Head(
            method: method.rawValue, route: InboxRoute(method: method, uri: uri), contentLength: length, chunked: chunked,
            hasTransferEncoding: chunked, contentDigest: digest, idempotencyKey: key, expectContinue: expect,
            contentDisposition: nil, contentType: nil
        )
    }

    /// A machine past the partner decision for `head`, and the action that decision gave.
    func decided(_ head: Machine.Head, limit: Int64 = 10) -> (Machine, Machine.Action) {
        var machine = Machine(id: "20270115T080000Z-0000abcd", directWriteThreshold: 8 << 20)
        #expect(machine.headReceived(head) == .decidePartner(rememberedIfUpload: head.route.isUpload))
        let action = machine.partnerDecided(.accepted(partner: "acme", uploadLimit: limit))
        return (machine, action)
    }

    func refusal(_ action: Machine.Action, sourceLocation: SourceLocation = #_sourceLocation) -> Machine.Refusal? {
        guard case .refuse(let refusal) = action else {
            Issue.record("not a refusal: \(action)", sourceLocation: sourceLocation)
            return nil
        }
        return refusal
    }

    @Test func anUploadIsReceivedWrittenCommittedAndAnsweredWith201() throws {
        var (machine, action) = decided(Self.head(digest: Self.digestOfABC, key: "k1", expect: true))
        #expect(action == .receive(Machine.Reception(id: "20270115T080000Z-0000abcd", filename: "a.xml", direct: false, sendContinue: true, idempotencyKey: "k1")))
        #expect(machine.bodyChunk(2) == .write)
        #expect(machine.bodyChunk(1) == .write)
        #expect(machine.bodyEnded() == .settle)
        guard case .commit(let receipt) = machine.digestKnown(Self.sha256OfABC, now: now) else {
            Issue.record("no commit")
            return
        }
        #expect(receipt.size == 3 && receipt.storedName == "20270115T080000Z-0000abcd-a.xml" && receipt.idempotencyKey == "k1")
        #expect(receipt.receivedAt == now)
        #expect(machine.commitEnded(.stored(.committed(receipt))) == .reply(status: 201, receipt: receipt, discardStaged: false))
        #expect(Machine.auditEntry(for: .committed(receipt), name: "a.xml")
            == Machine.AuditEntry(outcome: .accepted, status: 201, partner: "acme", detail: "a.xml: 3 bytes, receipt \(receipt.id)"))
    }

    @Test func aReplayAnswersTheEarlierReceiptWith200AndDiscardsTheNewFile() throws {
        var (machine, _) = decided(Self.head(key: "k1"))
        _ = machine.bodyChunk(3)
        _ = machine.bodyEnded()
        guard case .commit(let receipt) = machine.digestKnown(Self.sha256OfABC, now: now) else { return }
        #expect(machine.commitEnded(.stored(.replay(receipt))) == .reply(status: 200, receipt: receipt, discardStaged: true))
    }

    @Test func aCertificateThatMapsToNoActivePartnerIsRefusedFirstWhateverElseIsWrong() throws {
        var machine = Machine(id: "x", directWriteThreshold: 1)
        _ = machine.headReceived(Self.head(.DELETE, "/elsewhere", length: "99999"))
        let forbidden = try #require(refusal(machine.partnerDecided(.refused(reason: "disabled"))))
        #expect(forbidden.status == 403 && forbidden.code == "unknown_partner" && forbidden.close)
        #expect(forbidden.audit == Machine.AuditEntry(outcome: .refused, status: 403, partner: nil, detail: "disabled"))
    }

    /// Each case breaks one more rule than the next, so the first refusal wins.
    static let precedence: [(Machine.Head, Int, String)] = [
        (head(.GET, "/elsewhere", length: "99"), 404, "not_found"),
        (head(.DELETE, "/inbox/a.xml", length: "99"), 405, "method_not_allowed"),
        (head(.PUT, "/inbox/..", length: nil), 400, "bad_filename"),
        (head(.PUT, "/inbox/a.xml", length: nil, digest: "sha-256=:abc:"), 411, "length_required"),
        (head(.PUT, "/inbox/a.xml", length: "11", digest: "sha-256=:abc:"), 413, "too_large"),
        (head(.PUT, "/inbox/a.xml", length: "3", digest: "sha-256=:abc:"), 400, "bad_header"),
        (head(.PUT, "/inbox/a.xml", length: "3", key: "has space"), 400, "bad_header"),
    ]

    @Test(arguments: precedence)
    func refusalsComeInTheirOrderBeforeAByteOfBodyIsRead(head: Machine.Head, status: Int, code: String) throws {
        let refused = try #require(refusal(decided(head).1))
        #expect(refused.status == status && refused.code == code, "\(refused)")
        #expect(refused.audit?.status == status && refused.audit?.partner == "acme")
        #expect(refused.close == head.hasBody || head.route.isUpload, "an unread body closes the connection")
        #expect(!refused.discardStaged, "nothing is staged before the body")
        #expect(refused.confirmPartner == (status == 411 || status == 413 || code == "bad_header"), "upload refusals confirm the partner")
        if status == 405 { #expect(refused.headers["Allow"] == "PUT, OPTIONS") }
    }

    @Test func aChunkedBodyIsStoppedAsSoonAsItPassesTheLimit() throws {
        var (machine, action) = decided(Self.head(length: nil, chunked: true), limit: 10)
        guard case .receive = action else { Issue.record("\(action)"); return }
        #expect(machine.bodyChunk(10) == .write, "exactly the limit is fine")
        let tooLarge = try #require(refusal(machine.bodyChunk(1)))
        #expect(tooLarge.status == 413 && tooLarge.discardStaged && tooLarge.close)
        #expect(tooLarge.audit?.detail == "a.xml: the body passed this partner's limit of 10 bytes")
    }

    @Test func aBodyThatIsNotWhatContentDigestSaysIsRefusedAndDiscarded() throws {
        var (machine, _) = decided(Self.head(digest: Self.digestOfABC))
        _ = machine.bodyChunk(3)
        _ = machine.bodyEnded()
        let mismatch = try #require(refusal(machine.digestKnown(String(repeating: "0", count: 64), now: now)))
        #expect(mismatch.status == 400 && mismatch.code == "digest_mismatch" && mismatch.discardStaged && mismatch.confirmPartner)
    }

    /// A machine whose upload of "abc" is being committed.
    func committing() -> Machine {
        var (machine, _) = decided(Self.head())
        _ = machine.bodyChunk(3)
        _ = machine.bodyEnded()
        _ = machine.digestKnown(Self.sha256OfABC, now: now)
        return machine
    }

    @Test func whatTheCommitFindsDecidesTheAnswer() throws {
        let receipt = Receipt(id: "r", partner: "acme", filename: "a.xml", storedName: "r-a.xml", size: 3, sha256: "", receivedAt: now, idempotencyKey: "k")
        var machine = committing()
        let conflict = try #require(refusal(machine.commitEnded(.stored(.conflict(receipt)))))
        #expect(conflict.status == 409 && conflict.code == "idempotency_conflict" && conflict.audit == nil && conflict.discardStaged)

        machine = committing()
        let full = try #require(refusal(machine.commitEnded(.failed(WharfError(.insufficientStorage, "full")))))
        #expect(full.status == 507 && full.code == "insufficient_storage" && full.isGatewayFailure && full.discardStaged)
        machine = committing()
        let broken = try #require(refusal(machine.commitEnded(.failed(WharfError(.fileSystem, "EIO")))))
        #expect(broken.status == 500 && broken.code == "storage")

        let revoked = try #require(Machine.objection(partner: "acme", size: 3, filename: "a.xml", now: .refused(reason: "disabled")))
        #expect(revoked.status == 403 && revoked.audit?.partner == nil)
        let moved = try #require(Machine.objection(partner: "acme", size: 3, filename: "a.xml", now: .accepted(partner: "beta", uploadLimit: 10)))
        #expect(moved.status == 409 && moved.code == "partner_changed")
        let lowered = try #require(Machine.objection(partner: "acme", size: 3, filename: "a.xml", now: .accepted(partner: "acme", uploadLimit: 2)))
        #expect(lowered.status == 413)
        #expect(Machine.objection(partner: "acme", size: 3, filename: "a.xml", now: .accepted(partner: "acme", uploadLimit: 3)) == nil)
    }

    @Test func aCommitFoundThePartnersChangedIsDecidedAgainAndRefusedWhenTheyKeepChanging() throws {
        func after(_ now: Machine.PartnerDecision, round: Int) -> Machine.Refusal? {
            Machine.afterPartnersChanged(partner: "acme", size: 3, filename: "a.xml", now: now, round: round, of: 3)
        }
        // Still accepted: commit again, in every round but the last.
        #expect(after(.accepted(partner: "acme", uploadLimit: 10), round: 1) == nil)
        #expect(after(.accepted(partner: "acme", uploadLimit: 10), round: 2) == nil)
        // What the partners decide now comes first, in any round.
        #expect(after(.refused(reason: "partner 'acme' is disabled"), round: 1)?.status == 403)
        #expect(after(.accepted(partner: "beta", uploadLimit: 10), round: 1)?.code == "partner_changed")
        #expect(after(.accepted(partner: "acme", uploadLimit: 2), round: 3)?.status == 413)
        // Changed under every commit: nothing stored, and the client is told to come back.
        let changing = try #require(after(.accepted(partner: "acme", uploadLimit: 10), round: 3))
        #expect(changing.status == 503 && changing.code == "partners_changing" && changing.close)
        #expect(changing.headers["Retry-After"] == "\(Machine.retryAfterUnavailable)")
        #expect(changing.message.contains("send the file again"))
        #expect(changing.audit == Machine.AuditEntry(outcome: .refused, status: 503, partner: "acme", detail: "a.xml: \(changing.message)"))
        // Through the commit's end, as the handler hands it over: the staged file goes.
        var machine = committing()
        let answered = try #require(refusal(machine.commitEnded(.objection(changing))))
        #expect(answered.status == 503 && answered.discardStaged)
    }

    @Test func aPartnerDisabledWhileTheBodyArrivedHears403InsteadOfTheOtherReason() throws {
        var (machine, _) = decided(Self.head(length: nil, chunked: true), limit: 1)
        let tooLarge = try #require(refusal(machine.bodyChunk(2)))
        let revoked = machine.partnerRevoked("partner 'acme' is disabled", instead: tooLarge)
        #expect(revoked.status == 403 && revoked.discardStaged)
        #expect(revoked.audit?.detail == "a.xml: partner 'acme' is disabled" && revoked.audit?.partner == nil)
    }

    @Test func aClientGoneMidBodyIsAuditedWithWhatArrivedAndGetsNoAnswer() {
        var (machine, _) = decided(Self.head(length: "9"))
        _ = machine.bodyChunk(4)
        #expect(machine.clientGone() == .abandon(Machine.AuditEntry(
            outcome: .refused, status: nil, partner: "acme", detail: "a.xml: the client disconnected after 4 bytes"
        )))
        var (timedOut, _) = decided(Self.head(length: "9"))
        #expect(timedOut.brokeOff("idle") == .abandon(Machine.AuditEntry(
            outcome: .refused, status: nil, partner: "acme", detail: "a.xml: the request broke off after 0 bytes of body: idle"
        )))
    }

    @Test func aListMustComeWithoutBody() throws {
        var (machine, action) = decided(Self.head(.GET, "/inbox", length: nil))
        #expect(action == .drain)
        #expect(machine.listDrained(hadBody: false) == .list(partner: "acme"))
        var (withBody, _) = decided(Self.head(.GET, "/inbox", length: "3"))
        #expect(try #require(refusal(withBody.listDrained(hadBody: true))).code == "unexpected_body")
        var (gone, _) = decided(Self.head(.GET, "/inbox", length: nil))
        #expect(gone.listDrained(hadBody: nil) == .abandon(nil))
    }

    @Test func aLargeDeclaredUploadIsWrittenPastThePageCacheAndAPostGetsAName() {
        var machine = Machine(id: "r1", directWriteThreshold: 8)
        _ = machine.headReceived(Self.head(length: "8"))
        guard case .receive(let large) = machine.partnerDecided(.accepted(partner: "acme", uploadLimit: 100)) else { return }
        #expect(large.direct)
        var post = Machine(id: "r2", directWriteThreshold: 8)
        var head = Self.head(.POST, "/inbox")
        head.contentType = "application/json"
        _ = post.headReceived(head)
        guard case .receive(let named) = post.partnerDecided(.accepted(partner: "acme", uploadLimit: 100)) else { return }
        #expect(named.filename == "upload-r2.json" && !named.direct)
    }
}

@Suite struct UploadFramingTests {
    typealias Machine = UploadStateMachine

    static func decide(_ head: Machine.Head) -> Machine.Action {
        var machine = Machine(id: "r1", directWriteThreshold: 1 << 30)
        _ = machine.headReceived(head)
        return machine.partnerDecided(.accepted(partner: "acme", uploadLimit: 100))
    }

    static func head(te: Bool = false, noHost: Bool = false) -> Machine.Head {
        var head = UploadStateMachineTests.head(length: te ? nil : "3", chunked: te)
        head.unsupportedTransferEncoding = te
        head.missingHost = noHost
        return head
    }

    @Test func aTransferCodingOtherThanChunkedGets501AndAClose() {
        guard case .refuse(let refusal) = Self.decide(Self.head(te: true)) else { Issue.record("not refused"); return }
        #expect(refusal.status == 501)
        #expect(refusal.code == "unsupported_transfer_encoding")
        #expect(refusal.close)
    }

    @Test func anHTTP11RequestWithoutHostGets400AndAClose() {
        guard case .refuse(let refusal) = Self.decide(Self.head(noHost: true)) else { Issue.record("not refused"); return }
        #expect(refusal.status == 400)
        #expect(refusal.code == "missing_host")
        #expect(refusal.close)
    }

    @Test func aMalformedBodyGets400AndItsStagedFileDiscarded() {
        var machine = Machine(id: "r1", directWriteThreshold: 1 << 30)
        _ = machine.headReceived(UploadStateMachineTests.head(length: nil, chunked: true))
        _ = machine.partnerDecided(.accepted(partner: "acme", uploadLimit: 100))
        guard case .refuse(let refusal) = machine.malformedBody("invalid chunk") else { Issue.record("not refused"); return }
        #expect(refusal.status == 400)
        #expect(refusal.discardStaged)
        #expect(refusal.audit?.detail.contains("invalid chunk") == true)
    }
}
