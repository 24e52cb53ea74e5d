import Foundation
import Testing
import WharfTestSupport

/// The listener's TLS: Mozilla's "intermediate" profile, checked by sslyze (from PyPI;
/// scripts/test installs it and names its directory in WHARF_PYTHON_TOOLS), and no list of
/// trusted CAs for whoever connects.
@Suite struct TLSProfileTests {
    static func sslyze() throws -> String {
        let directory = try #require(
            ProcessInfo.processInfo.environment["WHARF_PYTHON_TOOLS"],
            "WHARF_PYTHON_TOOLS is not set: run the suite with scripts/test, which installs sslyze"
        )
        return "\(directory)/sslyze"
    }

    @Test func sslyzeFindsTheListenerCompliantWithMozillasIntermediateProfile() async throws {
        let sslyze = try Self.sslyze()
        let gateway = try await TestGateway.start()
        let bundle = "\(gateway.home)/partners/acme"
        let result = try await Command.runAsync(sslyze, [
            "--cert", "\(bundle)/acme.crt", "--key", "\(bundle)/acme.key", "--certinfo_ca_file", "\(bundle)/ca.crt",
            "--mozilla_config", "intermediate", "127.0.0.1:\(gateway.port)",
        ])
        try await gateway.stop()
        #expect(result.stdout.contains("127.0.0.1:\(gateway.port): OK - Compliant."), "\(result.stdout.suffix(2_000))\(result.stderr)")
        #expect(result.status == 0)
    }

    /// CBC and SHA-1 suites are what the intermediate profile drops from TLS 1.2.
    @Test func tls12CBCSuitesAreRefused() async throws {
        let gateway = try await TestGateway.start()
        let cbc = try await Command.runAsync(
            "openssl", gateway.sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"]),
            input: Data()
        )
        let aead = try await Command.runAsync("openssl", gateway.sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"]), input: Data())
        try await gateway.stop()
        #expect(cbc.status != 0, "a CBC suite was negotiated: \(cbc.stdout)")
        #expect(aead.status == 0, "\(aead.stderr)")
    }

    @Test(arguments: [false, true])
    func theCertificateRequestNamesCAsOnlyWhenAskedTo(send: Bool) async throws {
        let gateway = try await TestGateway.start { $0.sendCANames = send }
        let shown = try await Command.runAsync("openssl", gateway.sClient(["-tls1_2"]), input: Data())
        try await gateway.stop()
        #expect(shown.stdout.contains("Acceptable client certificate CA names") == send, "\(shown.stdout)")
        #expect(shown.stdout.contains("No client certificate CA names sent") == !send)
    }
}
