import Foundation
import GRDB
import Testing
import WharfCore
@testable import WharfStore

/// Hook events are queued by the store in the commit of what they describe, leased while
/// they are dispatched, and retried or finished as the dispatch says.
@Suite struct HookQueueTests {
    let registry: Registry

    init() throws {
        registry = try Registry.create(at: scratchRegistryPath("hooks"))
        for name in ["acme", "other"] { try registry.add(Partner(name: PartnerName(name))) }
    }

    func receipt(_ partner: String = "acme") -> Receipt {
        let id = Receipt.newID()
        return Receipt(
            id: id, partner: partner, filename: "order 1.xml", storedName: "\(id)-order 1.xml", size: 7,
            sha256: String(repeating: "a", count: 64), receivedAt: Date(), idempotencyKey: nil
        )
    }

    func commit(_ receipt: Receipt, install: () throws -> Void = {}) throws(WharfError) {
        _ = try registry.commit(receipt, audit: { _ in
            AuditEvent(outcome: .accepted, status: 201, partner: receipt.partner, subject: nil, fingerprint: nil, remoteAddress: nil, detail: nil)
        }, install: install)
    }

    func addHook(_ event: Hook.Event, partner: String? = nil) throws -> Hook {
        try registry.addHook(event: event, partner: partner.map { try PartnerName($0) }, action: .exec(["/bin/true"]), retry: Hook.defaultRetry, timeout: 5)
    }

    @Test func aReceivedEventIsQueuedWithItsReceiptAndWithdrawnWithIt() throws {
        let everyone = try addHook(.received)
        let acmeOnly = try addHook(.received, partner: "acme")
        _ = try addHook(.delivered)

        let kept = receipt()
        try commit(kept)
        let queued = try registry.hookEvents()
        #expect(Set(queued.map(\.hookID)) == [everyone.id, acmeOnly.id])
        #expect(queued.allSatisfy { $0.subject == kept.id && $0.state == .pending && $0.storedName == kept.storedName && $0.filename == "order 1.xml" })

        // Another partner's upload reaches only the hook for every partner.
        try commit(receipt("other"))
        #expect(try registry.hookEvents().filter { $0.partner == "other" }.map(\.hookID) == [everyone.id])

        // A receipt withdrawn because its file could not be moved announces nothing.
        struct MoveFailed: Error {}
        let withdrawn = receipt()
        #expect(throws: (any Error).self) { try commit(withdrawn, install: { throw MoveFailed() }) }
        #expect(try registry.hookEvents().contains { $0.subject == withdrawn.id } == false)
        #expect(try registry.hookEvents().count == 3)
    }

    @Test func theEndOfATransferIsQueuedInItsTransitionWithTheReason() throws {
        let delivered = try addHook(.delivered)
        let dead = try addHook(.dead, partner: "acme")
        func transfer() throws -> Transfer {
            let transfer = Transfer(id: Transfer.newID(), partner: "acme", filename: "a.bin", size: 1, sha256: String(repeating: "0", count: 64), createdAt: Date())
            try registry.enqueue(transfer, install: {})
            return try #require(try registry.claimDue(now: Date(), defaultPerPartner: 10, limit: 1).transfers.first)
        }
        func attempt(_ transfer: Transfer) -> DeliveryAttempt {
            DeliveryAttempt(transferID: transfer.id, number: 1, startedAt: Date(), duration: 0.1, curlCode: 0, httpStatus: 201, bytesSent: 1, error: nil)
        }
        let sent = try transfer()
        try registry.finish(sent, attempt: attempt(sent), outcome: .delivered(receipt: "{}"))
        let refused = try transfer()
        try registry.finish(refused, attempt: attempt(refused), outcome: .dead(reason: "HTTP 400"))
        let retried = try transfer()
        try registry.finish(retried, attempt: attempt(retried), outcome: .retry(at: Date().addingTimeInterval(3600), reason: "HTTP 503"))
        let killed = try transfer()
        try registry.kill(killed.id, reason: "stuck")

        let events = try registry.hookEvents()
        #expect(events.filter { $0.hookID == delivered.id }.map(\.subject) == [sent.id])
        #expect(events.filter { $0.hookID == dead.id }.map(\.subject) == [killed.id, refused.id])
        #expect(events.first { $0.subject == refused.id }?.reason == "HTTP 400")
        #expect(events.first { $0.subject == killed.id }?.reason == "stuck")
        #expect(!events.contains { $0.subject == retried.id }, "a retry is not an end")
    }

    @Test func aClaimedEventIsLeasedAndAFinishedOneIsNotDueAgain() throws {
        let hook = try addHook(.received)
        try commit(receipt())
        let now = Date()
        let claimed = try registry.claimHookEvents(now: now, margin: 55, limit: 10)
        #expect(claimed.map(\.1) == [hook])
        let event = try #require(claimed.first?.0)
        #expect(try registry.claimHookEvents(now: now.addingTimeInterval(59), margin: 55, limit: 10).isEmpty, "leased")
        // A dispatcher that died mid-run: the lease runs out and the event is due again.
        #expect(try registry.claimHookEvents(now: now.addingTimeInterval(61), margin: 55, limit: 10).map(\.0.id) == [event.id])

        try registry.finishHookEvent(event.id, outcome: .retry(at: now.addingTimeInterval(200), error: "exit 1"), at: now)
        var stored = try #require(try registry.hookEvents().first)
        #expect(stored.state == .pending && stored.attempts == 1 && stored.lastError == "exit 1")
        #expect(try registry.claimHookEvents(now: now.addingTimeInterval(199), margin: 55, limit: 10).isEmpty)
        #expect(try registry.claimHookEvents(now: now.addingTimeInterval(201), margin: 55, limit: 10).count == 1)

        try registry.finishHookEvent(event.id, outcome: .done, at: now)
        stored = try #require(try registry.hookEvents().first)
        #expect(stored.state == .done && stored.attempts == 2 && stored.lastError == nil)
        #expect(try registry.claimHookEvents(now: now.addingTimeInterval(10_000), margin: 55, limit: 10).isEmpty)
    }

    @Test func removingAHookDropsItsQueuedEvents() throws {
        let hook = try addHook(.received)
        try commit(receipt())
        try registry.removeHook(hook.id)
        #expect(try registry.hookEvents().isEmpty)
        #expect(try registry.hooks().isEmpty)
        #expect(throws: WharfError.self) { try registry.removeHook(hook.id) }
    }

    @Test func aFailureRetriesWithBackoffUntilThePolicyGivesUp() {
        var retry = Hook.defaultRetry
        retry.maxAttempts = 2
        retry.initialDelay = 4
        let hook = Hook(id: 1, event: .received, partner: nil, action: .exec(["/bin/false"]), retry: retry)
        let now = Date()
        var event = HookEvent(
            id: 1, hookID: 1, event: .received, subject: "r", partner: "acme", filename: "a", size: 1, sha256: "", storedName: nil,
            reason: nil, occurredAt: now
        )
        #expect(HookOutcome.afterFailure(of: event, by: hook, error: "exit 1", now: now, random: 0.5) == .retry(at: now.addingTimeInterval(2), error: "exit 1"))
        event.attempts = 1
        guard case .failed(let error) = HookOutcome.afterFailure(of: event, by: hook, error: "exit 1", now: now, random: 0.5) else {
            Issue.record("the second failure of two allowed is the last")
            return
        }
        #expect(error == "exit 1; gave up after 2 attempts")
    }

    @Test func anEventsFieldsAreTheSameInItsJSONAndItsEnvironment() throws {
        let event = HookEvent(
            id: 7, hookID: 1, event: .dead, subject: "t-1", partner: "acme", filename: "a \"b\"\n$(c).xml", size: 12, sha256: "ab",
            storedName: nil, reason: "HTTP 400", occurredAt: Date(timeIntervalSince1970: 1_800_000_000.25)
        )
        let json = try #require(try JSONSerialization.jsonObject(with: Data(event.json(path: nil).utf8)) as? [String: Any])
        #expect(json["id"] as? Int == 7 && json["size"] as? Int == 12 && json["attempt"] as? Int == 1)
        #expect(json["filename"] as? String == "a \"b\"\n$(c).xml" && json["transfer"] as? String == "t-1" && json["reason"] as? String == "HTTP 400")
        #expect(json["occurred_at"] as? String == "2027-01-15T08:00:00.250Z")
        let environment = event.environment(path: nil)
        #expect(environment["WHARF_EVENT"] == "dead" && environment["WHARF_EVENT_FILENAME"] == "a \"b\"\n$(c).xml")
        #expect(environment["WHARF_EVENT_TRANSFER"] == "t-1" && environment["WHARF_EVENT_ID"] == "7" && environment["WHARF_EVENT_PATH"] == nil)
    }

    @Test func aCommandIsSplitAsAShellWouldWithoutExpandingAnything() throws {
        #expect(try Hook.words(#"/bin/ingest --queue 'orders in' "a \"b\"" c\ d $HOME"#) == ["/bin/ingest", "--queue", "orders in", #"a "b""#, "c d", "$HOME"])
        #expect(try Hook.words("  x  ''  ") == ["x", ""])
        #expect(throws: WharfError.self) { try Hook.words("x 'open") }
        #expect(throws: WharfError.self) { try Hook.words("   ") }
    }
}
