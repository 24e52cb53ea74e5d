import Foundation
import Testing
import WharfCore

/// The defender's decisions, without sockets: scores, thresholds, the observation window,
/// ban lengths for repeat offenders, and bans merged from the store.
@Suite struct DefenderLedgerTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func fifteenPointsWithinThirtyMinutesBanForThirtyMinutes() {
        var ledger = DefenderLedger()
        for attempt in 1...7 {
            #expect(ledger.score(.handshakeRefused, from: "192.0.2.7", at: start.addingTimeInterval(Double(attempt))) == nil)
        }
        #expect(!ledger.isBanned("192.0.2.7", at: start.addingTimeInterval(8)))
        let ban = ledger.score(.unknownPartner, from: "192.0.2.7", at: start.addingTimeInterval(8))
        #expect(ban?.times == 1 && ban?.reason == "unknown_partner")
        #expect(ban?.until == start.addingTimeInterval(8 + 1800))
        #expect(ledger.isBanned("192.0.2.7", at: start.addingTimeInterval(1807)))
        #expect(!ledger.isBanned("192.0.2.7", at: start.addingTimeInterval(1808)))
        #expect(!ledger.isBanned("192.0.2.8", at: start.addingTimeInterval(9)), "only that address")
        // Banned, it scores nothing more.
        #expect(ledger.score(.limitExceeded, from: "192.0.2.7", at: start.addingTimeInterval(10)) == nil)
    }

    @Test func pointsOlderThanTheObservationWindowDoNotCount() {
        var ledger = DefenderLedger()
        for minute in 0..<20 {
            // 2 points every 5 minutes: never more than 12 within 30 minutes.
            #expect(ledger.score(.malformedRequest, from: "2001:db8::1", at: start.addingTimeInterval(Double(minute) * 300)) == nil)
        }
    }

    @Test func limitHitsScoreMore() {
        var ledger = DefenderLedger()
        for second in 0..<4 { #expect(ledger.score(.limitExceeded, from: "a", at: start.addingTimeInterval(Double(second))) == nil) }
        #expect(ledger.score(.limitExceeded, from: "a", at: start.addingTimeInterval(5)) != nil, "5 × 3 points")
    }

    @Test func aRepeatOffenderIsBannedLonger() {
        var ledger = DefenderLedger()
        var now = start
        var lengths: [TimeInterval] = []
        for _ in 1...3 {
            var ban: AddressBan?
            while ban == nil {
                now += 1
                ban = ledger.score(.handshakeRefused, from: "a", at: now)
            }
            lengths.append(ban!.until.timeIntervalSince(ban!.since))
            now = ban!.until
        }
        #expect(lengths == [1800, 2700, 3600])
    }

    @Test func aLiftedBanFromTheStoreEndsTheBanAndCountsAsNone() {
        var ledger = DefenderLedger()
        var ban: AddressBan?
        for second in 1...8 { ban = ledger.score(.handshakeRefused, from: "a", at: start.addingTimeInterval(Double(second) + 0.0004)) }
        // As a store keeping milliseconds gives it back.
        var lifted = AddressBan(address: "a", since: ban!.since.addingTimeInterval(-0.0004), until: start.addingTimeInterval(20), times: 0, reason: ban!.reason)
        lifted.times = 0
        ledger.merge(stored: [lifted], at: start.addingTimeInterval(21))
        #expect(!ledger.isBanned("a", at: start.addingTimeInterval(21)))
        var next: AddressBan?
        for second in 22...29 { next = ledger.score(.handshakeRefused, from: "a", at: start.addingTimeInterval(Double(second))) ?? next }
        #expect(next?.times == 1 && next?.until == start.addingTimeInterval(29 + 1800))
    }

    @Test func aBanNotStoredYetSurvivesAMergeAndAnotherNodesBanIsTakenIn() {
        var ledger = DefenderLedger()
        for second in 1...8 { _ = ledger.score(.handshakeRefused, from: "a", at: start.addingTimeInterval(Double(second))) }
        let older = AddressBan(address: "a", since: start, until: start.addingTimeInterval(1), times: 0, reason: "handshake_refused")
        let elsewhere = AddressBan(address: "b", since: start, until: start.addingTimeInterval(600), times: 1, reason: "unknown_partner")
        ledger.merge(stored: [older, elsewhere], at: start.addingTimeInterval(9))
        #expect(ledger.isBanned("a", at: start.addingTimeInterval(9)))
        #expect(ledger.isBanned("b", at: start.addingTimeInterval(9)))
    }

    @Test func banLengthsFollowThePolicy() {
        var policy = DefenderPolicy()
        policy.banTime = .seconds(60)
        policy.increment = 1
        #expect([1, 2, 3].map(policy.banLength(times:)) == [60, 120, 180])
    }
}

@Suite struct AddressRangeTests {
    @Test func blocksAndSingleAddressesMatch() throws {
        let block = try AddressRange("10.1.0.0/16")
        #expect(block.contains("10.1.200.3") && !block.contains("10.2.0.1"))
        #expect(block.description == "10.1.0.0/16")
        #expect(try AddressRange("10.1.2.3/8").description == "10.0.0.0/8", "host bits are cleared")
        let one = try AddressRange("192.0.2.7")
        #expect(one.contains("192.0.2.7") && !one.contains("192.0.2.8") && one.prefixLength == 32)
        let v6 = try AddressRange("2001:db8::/32")
        #expect(v6.contains("2001:db8:1::5") && !v6.contains("2001:db9::1") && !v6.contains("10.0.0.1"))
        #expect(one.contains("::ffff:192.0.2.7"), "an IPv4-mapped address is its IPv4 address")
        #expect(try AddressRange("0.0.0.0/0").contains("203.0.113.9"))
        #expect(try AddressRange.list(" 10.0.0.0/8 , 192.0.2.7,").count == 2)
    }

    @Test(arguments: ["10.0.0.0/33", "example.com", "10.0.0.0/", "10.0.0/8", "::/129", "10.0.0.0/-1", "1.2.3.4\u{1b}[2J"])
    func notAnAddressOrBlockIsRefusedNamingTheFix(_ text: String) {
        #expect(throws: WharfError.self) { try AddressRange(text) }
        do {
            _ = try AddressRange(text)
        } catch {
            #expect(error.fix?.contains("10.0.0.0/8") == true)
            #expect(!error.problem.contains("\u{1b}"), "escaped")
        }
    }
}

@Suite struct RefusalTallyTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)  // a whole minute

    func refusal(_ second: Double, from remote: String, detail: String = "TLS handshake failed: X") -> AuditEvent {
        AuditEvent(at: start.addingTimeInterval(second), outcome: .refused, status: nil, partner: nil, subject: nil,
                   fingerprint: nil, remoteAddress: remote, detail: detail)
    }

    @Test func refusalsAreCountedPerAddressReasonAndMinute() {
        var tally = RefusalTally()
        for second in 0..<40 { tally.add(refusal(Double(second), from: "192.0.2.7:\(4000 + second)"), address: "192.0.2.7", code: "no_certificate") }
        tally.add(refusal(61, from: "192.0.2.7:5000"), address: "192.0.2.7", code: "no_certificate")
        tally.add(refusal(5, from: "192.0.2.8:5000"), address: "192.0.2.8", code: "no_certificate")
        tally.add(refusal(6, from: "192.0.2.7:5001", detail: "other"), address: "192.0.2.7", code: "not_tls")
        let events = tally.drain()
        #expect(tally.isEmpty)
        #expect(events.count == 4)
        let counted = events[0]
        #expect(counted.remoteAddress == "192.0.2.7" && counted.at == start)
        #expect(counted.detail == "TLS handshake failed: X (40 times from this address until \(start.addingTimeInterval(39).utcTimestamp()))")
        // A count of one is the refusal as it was, port and all.
        #expect(events.contains { $0.remoteAddress == "192.0.2.8:5000" && $0.detail == "TLS handshake failed: X" })
        #expect(events.contains { $0.remoteAddress == "192.0.2.7:5001" && $0.detail == "other" })
        #expect(events.last?.at == start.addingTimeInterval(61))
    }

    @Test func pastItsCapacityNewAddressesAreCountedTogether() {
        var tally = RefusalTally(capacity: 3)
        for index in 0..<100 { tally.add(refusal(1, from: "10.0.0.\(index):1"), address: "10.0.0.\(index)", code: "no_certificate") }
        let events = tally.drain()
        #expect(events.count == 4)
        #expect(events.contains { $0.remoteAddress == "other" && $0.detail?.contains("(97 times") == true })
    }
}
