import NIOHTTP1
import Testing
@testable import WharfListener

/// The outbox's paths and queries, and the `Range` header as a file's answer reads it.
@Suite struct OutboxRouteTests {
    @Test func theOutboxPathsMapToTheirRequestsAndOthersAreRefused() {
        let id = "t20261203T071000Z-0a1b2c3d"
        #expect(InboxRoute(method: .GET, uri: "/outbox") == .outbox(.list(limit: 100, after: nil)))
        #expect(InboxRoute(method: .GET, uri: "/outbox/?limit=5&after=\(id)") == .outbox(.list(limit: 5, after: id)))
        #expect(InboxRoute(method: .GET, uri: "/outbox/\(id)") == .outbox(.fetch(id: id)))
        #expect(InboxRoute(method: .DELETE, uri: "/outbox/\(id)") == .outbox(.acknowledge(id: id)))
        #expect(InboxRoute(method: .POST, uri: "/outbox/\(id)/ack") == .outbox(.acknowledge(id: id)))
        #expect(InboxRoute(method: .PUT, uri: "/outbox") == .methodNotAllowed(allowed: "GET"))
        #expect(InboxRoute(method: .PUT, uri: "/outbox/\(id)") == .methodNotAllowed(allowed: "GET, DELETE"))
        #expect(InboxRoute(method: .GET, uri: "/outbox/\(id)/ack") == .methodNotAllowed(allowed: "POST"))
        for path in ["/outbox/../inbox", "/outbox/x", "/outbox/\(id)/other", "/outbox/t%2e%2e"] {
            #expect(InboxRoute(method: .GET, uri: path) == .notFound, "\(path)")
        }
        for query in ["limit=0", "limit=1001", "limit=ten", "after=../x"] {
            guard case .badQuery = InboxRoute(method: .GET, uri: "/outbox?\(query)") else {
                Issue.record("\(query) was not refused")
                continue
            }
        }
    }

    @Test(arguments: [
        ("bytes=0-99", ByteRangeSelection.part(0..<100)),
        ("bytes=100-", .part(100..<1000)),
        ("bytes=-10", .part(990..<1000)),
        ("bytes=-5000", .part(0..<1000)),
        ("bytes=900-5000", .part(900..<1000)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        // Not served as a range: the whole file, as RFC 9110 allows.
        ("bytes=0-1,5-6", .whole), ("items=0-1", .whole), ("bytes=5-1", .whole), ("bytes=a-b", .whole), ("bytes=-", .whole),
    ] as [(String, ByteRangeSelection)])
    func aRangeIsReadAsRFC9110Says(_ header: String, _ expected: ByteRangeSelection) {
        #expect(ByteRangeSelection(range: header, ifRange: nil, etag: "\"e\"", size: 1000) == expected)
    }

    @Test func anIfRangeThatNoLongerMatchesGetsTheWholeFile() {
        #expect(ByteRangeSelection(range: "bytes=10-", ifRange: "\"old\"", etag: "\"new\"", size: 100) == .whole)
        #expect(ByteRangeSelection(range: "bytes=10-", ifRange: "\"new\"", etag: "\"new\"", size: 100) == .part(10..<100))
        #expect(ByteRangeSelection(range: nil, ifRange: nil, etag: "\"new\"", size: 100) == .whole)
    }

    @Test func aPushPartnersOutboxRequestIsRefusedWithTheFix() throws {
        var machine = UploadStateMachine(id: "r1", directWriteThreshold: 1 << 20)
        let head = UploadStateMachine.Head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/outbox", headers: ["Host": "wharf"]))
        _ = machine.headReceived(head)
        guard case .refuse(let refusal) = machine.partnerDecided(.accepted(partner: "acme", uploadLimit: 10, pulls: false)) else {
            Issue.record("a push partner's outbox was served")
            return
        }
        #expect(refusal.status == 409 && refusal.code == "not_a_pull_partner" && refusal.message.contains("--delivery pull"))
        var pulling = UploadStateMachine(id: "r2", directWriteThreshold: 1 << 20)
        _ = pulling.headReceived(head)
        #expect(pulling.partnerDecided(.accepted(partner: "shop", uploadLimit: 10, pulls: true)) == .drain)
    }
}
