import Foundation
import GRDB
import Testing
import WharfCore
@testable import WharfStore

/// Every transition through the store, from every state: applied exactly when the domain's
/// life cycle allows it, otherwise refused with `transition_refused` and nothing changed.
@Suite struct TransferTransitionTests {
    let registry: Registry

    init() throws {
        registry = try Registry.create(at: scratchRegistryPath("transitions"))
        try registry.add(Partner(name: PartnerName("puller"), outbound: OutboundSettings(delivery: .pull)))
    }

    /// A transfer put in `state`: of a partner the registry does not know (claims still see
    /// it), or of pull partner `puller` for the transitions only pull transfers take.
    func transfer(in state: Transfer.State, partner: String = "nobody") throws -> Transfer {
        let transfer = Transfer(
            id: Transfer.newID(), partner: partner, filename: "a.bin", size: 1, sha256: String(repeating: "0", count: 64),
            createdAt: Date().addingTimeInterval(-10)
        )
        try registry.enqueue(transfer, install: {})
        try registry.write { db in
            try db.execute(
                sql: "UPDATE transfer SET state = ?, delivered_at = ? WHERE id = ?",
                arguments: [state.rawValue, state == .delivered ? Date().stored : nil, transfer.id]
            )
        }
        return try #require(try registry.transfer(id: transfer.id))
    }

    func apply(_ transition: Transfer.Transition, to transfer: Transfer) throws(WharfError) {
        let attempt = DeliveryAttempt(
            transferID: transfer.id, number: transfer.attempts + 1, startedAt: Date(), duration: 0.1, curlCode: 0,
            httpStatus: 201, bytesSent: 1, error: nil
        )
        switch transition {
        case .claim:
            let claimed = try registry.claimDue(now: Date(), defaultPerPartner: 100, limit: 100).transfers.map(\.id)
            guard claimed.contains(transfer.id) else { throw transition.refusal(transfer: transfer.id, state: transfer.state) }
        case .deliver:
            try registry.finish(transfer, attempt: attempt, outcome: .delivered(receipt: "{}"))
        case .scheduleRetry:
            try registry.finish(transfer, attempt: attempt, outcome: .retry(at: Date(), reason: "HTTP 503"))
        case .giveUp:
            try registry.finish(transfer, attempt: attempt, outcome: .dead(reason: "HTTP 400"))
        case .kill:
            try registry.kill(transfer.id, reason: "gone")
        case .release:
            try registry.release(transfer.id, retryAt: Date(), reason: "not recorded")
        case .recover:
            guard try registry.recoverInterrupted(now: Date()) == 1 else {
                throw transition.refusal(transfer: transfer.id, state: transfer.state)
            }
        case .retry:
            _ = try registry.retry(transfer.id, now: Date())
        case .cancel:
            try registry.cancel(transfer.id, remove: {})
        case .acknowledge:
            let acknowledged = try registry.acknowledge(transfer.id, of: transfer.partner, at: Date(), remoteAddress: "127.0.0.1:1") { _ in ("{}", nil) } install: { _ in }
            // Acknowledging a delivered transfer again is harmless by design: it answers the
            // transfer unchanged, which the test below checks as it checks a refusal.
            if transfer.state == .delivered, acknowledged == transfer {
                throw transition.refusal(transfer: transfer.id, state: transfer.state)
            }
        case .expire:
            let expired = try registry.expireUnfetched(now: Date().addingTimeInterval(3600), defaultMaxAge: 60)
            guard expired.map(\.id).contains(transfer.id) else { throw transition.refusal(transfer: transfer.id, state: transfer.state) }
        }
    }

    static let cases: [(Transfer.Transition, Transfer.State)] = Transfer.Transition.allCases.flatMap { transition in
        Transfer.State.allCases.map { (transition, $0) }
    }

    @Test(arguments: cases)
    func aTransitionIsAppliedExactlyFromItsSources(_ transition: Transfer.Transition, from state: Transfer.State) throws {
        let before = try transfer(in: state, partner: [.acknowledge, .expire].contains(transition) ? "puller" : "nobody")
        let attemptsBefore = try registry.attempts(of: before.id).count
        let result = Result { () throws(WharfError) in try apply(transition, to: before) }
        let after = try #require(try registry.transfer(id: before.id))
        if transition.sources.contains(state) {
            #expect(throws: Never.self) { try result.get() }
            #expect(after.state == transition.target, "\(transition) from \(state)")
        } else {
            if case .failure(let error) = result {
                #expect(error.code == .transitionRefused, "\(error)")
            } else {
                Issue.record("\(transition) from \(state) was applied")
            }
            #expect(after == before, "a refused \(transition) from \(state) changed the transfer")
            #expect(try registry.attempts(of: before.id).count == attemptsBefore, "a refused attempt was recorded")
        }
    }

    @Test func aPullPartnersTransfersAreNeverClaimedAndExpireOnlyPastTheirMaximumAge() throws {
        let waiting = try transfer(in: .queued, partner: "puller")
        let pushed = try transfer(in: .queued)
        let claimed = try registry.claimDue(now: Date(), defaultPerPartner: 100, limit: 100).transfers.map(\.id)
        #expect(claimed == [pushed.id])
        // Queued ten seconds ago: not yet past 60 s, past 5 s.
        #expect(try registry.expireUnfetched(now: Date(), defaultMaxAge: 60).isEmpty)
        #expect(try registry.transfer(id: waiting.id)?.state == .queued)
        #expect(try registry.expireUnfetched(now: Date(), defaultMaxAge: 5).map(\.id) == [waiting.id])
        let events = try registry.auditEvents(AuditFilter(kind: .delivery, outcome: .dead), limit: 5)
        #expect(events.count == 1 && events.first?.detail?.contains("not fetched within the maximum age of 5 s") == true, "\(events.map(\.detail))")
    }

    @Test func aTransitionOfAnUnknownTransferIsNotFound() {
        #expect(throws: WharfError(.notFound, "no transfer t0", fix: "`wharf transfers list` shows the transfers")) {
            try registry.kill("t0", reason: "gone")
        }
    }

    @Test func retryKeepsTheAttemptCountAndStartsThePolicysCountAgain() throws {
        let sending = try transfer(in: .sending)
        let attempt = DeliveryAttempt(
            transferID: sending.id, number: 1, startedAt: Date(), duration: 0.1, curlCode: 0, httpStatus: 400, bytesSent: 1, error: "HTTP 400"
        )
        try registry.finish(sending, attempt: attempt, outcome: .dead(reason: "HTTP 400"))
        let retried = try registry.retry(sending.id, now: Date())
        #expect(retried.attempts == 1, "transfers list shows every attempt on record")
        #expect(retried.attemptsSinceQueued == 0)
        #expect(try registry.attempts(of: sending.id).count == retried.attempts)
    }
}
