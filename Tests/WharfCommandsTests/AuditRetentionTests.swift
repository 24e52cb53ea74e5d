import Foundation
import Logging
import Testing
import WharfCore
import WharfStore
import WharfTestSupport
@testable import WharfCommands

/// `--audit-retention-days` on a real home: events past the retention go, the pruning is
/// an event of its own, and `wharf audit verify` still passes and says where the trail
/// now starts.
@Suite struct AuditRetentionCommandTests {
    @Test func eventsPastTheRetentionAreRemovedAndTheTrailStillVerifies() throws {
        let fixture = try WharfHomeFixture()
        try fixture.succeed("init")
        try fixture.succeed("partner", "add", "acme")
        let registry = try Registry.open(at: "\(fixture.home)/wharf.sqlite")
        // The trail is a chain: pruning removes its start, up to the last event past the
        // retention. Here the events of `init` and `partner add` come before five backdated ones.
        let recent = try registry.auditHead().count
        let now = Date()
        try registry.record(contentsOf: (1...5).map { age in
            AuditEvent(at: now.addingTimeInterval(-Double(400 + age) * 86_400), outcome: .refused, status: 403, partner: nil,
                       subject: "CN=old", fingerprint: nil, remoteAddress: "192.0.2.1", detail: "old \(age)")
        })
        try registry.record(AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "kept"))
        let retention = AuditRetention(store: registry, days: 400, logger: Logger(label: "test"))
        #expect(retention.prune(at: now) == recent + 5)
        #expect(retention.prune(at: now) == 0)
        let events = try registry.auditEvents(limit: 100)
        #expect(!events.contains { $0.detail?.hasPrefix("old ") == true })
        #expect(events.first?.command == "audit retention" && events.first?.detail?.hasPrefix("\(recent + 5) audit events older than 400 days removed") == true)
        let verified = try fixture.succeed("audit", "verify").stdout
        #expect(verified.contains("The audit trail is intact: \(events.count) events"), "\(verified)")
        #expect(events.count == 2)
        #expect(verified.contains("It starts after \(recent + 5) older events, removed by the retention"), "\(verified)")
    }
}
