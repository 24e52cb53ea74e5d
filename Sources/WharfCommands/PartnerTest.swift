import ArgumentParser
import WharfCore
import WharfDelivery
import WharfPKI

/// `wharf partner test`.
struct PartnerTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Connect to a partner's URL exactly as a delivery would, and say what is right and what is wrong.",
        discussion: """
            Checks the connection, the TLS version, the server's certificate (subject, issuer, \
            expiry, host name), the pins (printing the server's own, ready to paste), whether \
            our client certificate is accepted, and the HTTP status of a GET probe of the URL. Sends no \
            file. Exits 0 only if a delivery would succeed.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        let home = home.resolved
        guard let partner = try home.openStore().partner(named: name) else { throw WharfError.unknownPartner(name.rawValue) }
        let credential = try partner.outbound.clientCredential ?? {
            let own = try home.pki.loadClient()
            return ClientCredential(certificatePEM: own.certificate.pemText, privateKeyPEM: own.privateKeyPEM)
        }()
        let report = PartnerProbe.run(partner, credential: credential)
        for finding in report.findings {
            let mark = switch finding.ok {
            case true?: "[ok]  "
            case false?: "[FAIL]"
            case nil: "[info]"
            }
            Console.print("\(mark) \(finding.text)")
        }
        if report.wouldDeliver {
            Console.print("A delivery to \(name) would succeed.")
        } else {
            Console.print("A delivery to \(name) would fail.")
            throw ExitCode(1)
        }
    }
}
