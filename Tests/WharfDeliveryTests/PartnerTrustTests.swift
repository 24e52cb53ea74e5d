import Foundation
import Testing
import WharfCore
import WharfStore
import WharfTestSupport

/// What a partner's own server can trust: nginx set up as the bundle's README says
/// (`ssl_client_certificate` the bundle's `ca.crt`) accepts Wharf's deliveries and no other
/// partner of Wharf, once partners' certificates and Wharf's own come from separate CAs.
@Suite(.serialized) struct PartnerTrustTests {
    /// `acme`'s nginx, trusting acme's bundle, as acme's delivery endpoint; and `beta`, another partner.
    static func acmeServer(in fixture: WharfHomeFixture) async throws -> NginxPartner {
        for name in ["acme", "beta"] {
            try await fixture.succeed("partner", "add", name)
            try await fixture.succeed("partner", "issue", name)
        }
        let nginx = try await NginxPartner(clientCA: "\(fixture.home)/partners/acme/ca.crt")
        try await fixture.succeed("partner", "update", "acme", "--url", nginx.url(), "--server-ca", nginx.serverCAFile)
        return nginx
    }

    /// beta pushes to acme's server with its own certificate from Wharf.
    static func betaPushes(to nginx: NginxPartner, from fixture: WharfHomeFixture) async throws -> HTTPResult {
        let bundle = "\(fixture.home)/partners/beta"
        let file = try TestGatewayFiles(fixture: fixture).randomFile("from-beta.txt", size: 100)
        return HTTPResult(try await Command.runAsync("curl", [
            "-sS", "-w", "\n%{http_code}", "--cert", "\(bundle)/beta.crt", "--key", "\(bundle)/beta.key",
            "--cacert", nginx.serverCAFile, "--upload-file", file.path, "\(nginx.url())/from-beta.txt",
        ]))
    }

    @Test func aPartnerServerTrustingItsBundleAcceptsWharfAndRefusesOtherPartners() async throws {
        let fixture = try WharfHomeFixture()
        try await fixture.succeed("init")
        let nginx = try await Self.acmeServer(in: fixture)
        let file = try TestGatewayFiles(fixture: fixture).randomFile("order.json", size: 1_000)
        try await fixture.succeed("send", "acme", file.path)
        try await fixture.succeed("deliver", "--once")
        let beta = try await Self.betaPushes(to: nginx, from: fixture)
        try await nginx.stop()

        let transfer = try #require(try Registry.open(at: "\(fixture.home)/wharf.sqlite").transfers().first)
        #expect(transfer.state == .delivered, "\(transfer)")
        #expect(FileManager.default.fileExists(atPath: "\(nginx.received)/order.json"))
        #expect(beta.status == 400, "\(beta.body) \(beta.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(nginx.received)/from-beta.txt"))
    }

    /// Why homes are split: with one CA, the same set-up lets beta in.
    @Test func withOneCATheSameServerAcceptsAnotherPartner() async throws {
        let fixture = try TestGateway.homeWithOneCA()
        let nginx = try await Self.acmeServer(in: fixture)
        let beta = try await Self.betaPushes(to: nginx, from: fixture)
        try await nginx.stop()
        #expect((200..<300).contains(beta.status), "\(beta.body) \(beta.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(nginx.received)/from-beta.txt"))
    }
}
