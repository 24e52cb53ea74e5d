import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import X509

/// The options `partner add` and `partner update` share.
struct PartnerSettingsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The name operators see (default: the partner name).", valueName: "text"))
    var displayName: String?

    @Option(name: .customLong("subject"), help: ArgumentHelp("Accept client certificates with this subject DN (repeatable). RFC 4514 or OpenSSL's form.", valueName: "dn"))
    var subjects: [String] = []

    @Option(name: .customLong("fingerprint"), help: ArgumentHelp("Accept exactly the client certificate with this SHA-256 fingerprint, also a self-signed one no CA issued (repeatable).", valueName: "hex"))
    var fingerprints: [String] = []

    @Option(name: .customLong("certificate"), help: ArgumentHelp("Accept exactly the client certificate in this PEM file, also a self-signed one no CA issued (repeatable).", valueName: "file"))
    var certificates: [String] = []

    @Option(help: ArgumentHelp("Identities given in this command are accepted from this time on (YYYY-MM-DD or RFC 3339).", valueName: "time"))
    var notBefore: String?

    @Option(help: ArgumentHelp("Identities given in this command are accepted until this time (YYYY-MM-DD or RFC 3339).", valueName: "time"))
    var notAfter: String?

    @Option(help: ArgumentHelp("A CA of the partner's own that issues its client certificates (PEM).", valueName: "file"))
    var trustCA: String?

    @Option(help: ArgumentHelp("The CRL of the partner's own CA (--trust-ca), PEM or DER: read again whenever the file changes; certificates it lists are refused, and all of the partner's while it is past its next update.", valueName: "file"))
    var crl: String?

    @Option(help: ArgumentHelp("The HTTPS URL files are delivered to.", valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("The CA bundle that signs the partner's server certificate (PEM).", valueName: "file"))
    var serverCA: String?

    @Option(name: .customLong("pin"), help: ArgumentHelp("Accept the partner's server key with this pin, sha256//BASE64 (repeatable: current and next key).", valueName: "pin"))
    var pins: [String] = []

    @Option(help: ArgumentHelp("The certificate Wharf presents to this partner (PEM; default: Wharf's client certificate).", valueName: "file"))
    var clientCert: String?

    @Option(help: ArgumentHelp("The private key of --client-cert (PEM, unencrypted).", valueName: "file"))
    var clientKey: String?

    @Option(help: ArgumentHelp("The largest upload accepted from this partner (default 1G), such as 512M.", valueName: "size"))
    var maxUploadSize: String?

    @Option(help: ArgumentHelp("Upper bound of the first retry's wait for this partner, in seconds (default: the gateway's, 30).", valueName: "seconds"))
    var retryInitial: Double?

    @Option(help: ArgumentHelp("The longest wait between attempts for this partner, in seconds (default 1800).", valueName: "seconds"))
    var retryMaximum: Double?

    @Option(help: ArgumentHelp("Attempts before a transfer to this partner dies (default 20).", valueName: "n"))
    var maxAttempts: Int?

    @Option(help: ArgumentHelp("Age in seconds after which a transfer to this partner dies (default 259200, 72 h).", valueName: "seconds"))
    var maxAge: Double?

    @Option(help: ArgumentHelp("Deliveries at once to this partner (default 4).", valueName: "n"))
    var maxDeliveries: Int?

    @Option(help: ArgumentHelp("push: Wharf sends the partner its files (the default); pull: they wait in its outbox until it fetches them (GET /outbox).", valueName: "push|pull"))
    var delivery: String?

    /// Reads and checks every value and file, before anything is written.
    func parse() throws(WharfError) -> PartnerSettings {
        if let displayName, displayName.trimmingCharacters(in: .whitespaces).isEmpty {
            throw .invalid("the display name is empty", fix: "give --display-name some text, or leave it out")
        }
        if let displayName, !EscapedText.isPrintable(displayName) {
            throw .invalid(
                "the display name contains a control or bidirectional formatting character",
                fix: "give --display-name printable text on one line"
            )
        }
        let notBefore = try notBefore.map { text throws(WharfError) in try Self.parseTime(text, option: "--not-before") }
        let notAfter = try notAfter.map { text throws(WharfError) in try Self.parseTime(text, option: "--not-after") }
        if (notBefore != nil || notAfter != nil) && subjects.isEmpty && fingerprints.isEmpty && certificates.isEmpty {
            throw .invalid("--not-before and --not-after apply to identities, but none was given", fix: "add --subject, --fingerprint or --certificate")
        }
        var identities: [InboundIdentity] = []
        for subject in subjects {
            identities.append(try InboundIdentity(.subject(try SubjectName(parsing: subject)), notBefore: notBefore, notAfter: notAfter))
        }
        for fingerprint in fingerprints {
            identities.append(try InboundIdentity(.fingerprint(try CertificateFingerprint(parsing: fingerprint)), notBefore: notBefore, notAfter: notAfter))
        }
        // A certificate file is a fingerprint identity for the certificate's validity (or the
        // window given); a self-signed one is also kept, for `partner show`.
        var pinned: [String] = []
        for path in certificates {
            for certificate in try PEMFile.certificates(path).certificates {
                guard certificate.notValidAfter > Date() else {
                    throw .invalid(
                        "the certificate in \(path) expired on \(certificate.notValidAfter.utcTimestamp())",
                        fix: "ask the partner for its current certificate"
                    )
                }
                identities.append(try InboundIdentity(
                    .fingerprint(certificate.fingerprint),
                    notBefore: notBefore ?? certificate.notValidBefore, notAfter: notAfter ?? certificate.notValidAfter
                ))
                if certificate.isSelfSigned {
                    pinned.append(certificate.pemText)
                }
            }
        }
        let revocationList = try crl.map { path throws(WharfError) in
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            return (path: (absolute as NSString).standardizingPath, list: try PartnerRevocationList(contentsOf: path))
        }
        var credential: ClientCredential?
        switch (clientCert, clientKey) {
        case (nil, nil):
            break
        case let (certificate?, key?):
            let keyed = try KeyedCertificate(
                certificatePEM: try PEMFile.read(certificate), privateKeyPEM: try PEMFile.read(key),
                certificateSource: certificate, keySource: key
            )
            credential = ClientCredential(certificatePEM: keyed.certificate.pemText, privateKeyPEM: keyed.privateKeyPEM)
        default:
            throw .invalid("--client-cert and --client-key go together", fix: "give both, or neither to use Wharf's client certificate")
        }
        return PartnerSettings(
            displayName: displayName?.trimmingCharacters(in: .whitespaces),
            identities: identities,
            trustCAPEM: try trustCA.map { path throws(WharfError) in try PEMFile.certificates(path).pem },
            pinnedCertificatesPEM: pinned,
            revocationList: revocationList,
            url: try url.map { text throws(WharfError) in try OutboundURL(parsing: text) },
            serverCAPEM: try serverCA.map { path throws(WharfError) in try PEMFile.certificates(path).pem },
            pins: try pins.map { text throws(WharfError) in try PublicKeyPin(parsing: text) },
            clientCredential: credential,
            maxUploadBytes: try maxUploadSize.map { text throws(WharfError) in try ByteSize.parse(text) },
            retryInitialDelay: try retryInitial.map { value throws(WharfError) in try DeliveryOptions.nonNegative(value, "--retry-initial") },
            retryMaximumDelay: try retryMaximum.map { value throws(WharfError) in try DeliveryOptions.nonNegative(value, "--retry-maximum") },
            maxAttempts: try maxAttempts.map { value throws(WharfError) in try Self.positive(value, "--max-attempts") },
            maxAge: try maxAge.map { value throws(WharfError) in try DeliveryOptions.nonNegative(value, "--max-age") },
            maxDeliveries: try maxDeliveries.map { value throws(WharfError) in try Self.positive(value, "--max-deliveries") },
            delivery: try delivery.map { text throws(WharfError) in
                guard let mode = OutboundSettings.DeliveryMode(rawValue: text) else {
                    throw .invalid("--delivery '\(EscapedText.terminal(text))' is neither push nor pull", fix: "give --delivery push or --delivery pull")
                }
                return mode
            }
        )
    }

    static func positive(_ value: Int, _ option: String) throws(WharfError) -> Int {
        guard value > 0 else { throw .invalid("\(option) must be at least 1", fix: "give a whole number of 1 or more") }
        return value
    }

    static func parseTime(_ text: String, option: String) throws(WharfError) -> Date {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let day = try? Date(text, strategy: Date.ISO8601FormatStyle().year().month().day()) { return day }
        throw .invalid("\(option) '\(text)' is not a time", fix: "write a date as 2027-01-31 or a time as 2027-01-31T12:00:00Z")
    }
}

/// Checked partner settings, ready to apply.
struct PartnerSettings {
    var displayName: String?
    var identities: [InboundIdentity]
    var trustCAPEM: String?
    /// Self-signed certificates given with --certificate, as PEM.
    var pinnedCertificatesPEM: [String]
    /// The CRL given with --crl, as an absolute path, and what it holds now.
    var revocationList: (path: String, list: PartnerRevocationList)?
    var url: OutboundURL?
    var serverCAPEM: String?
    var pins: [PublicKeyPin]
    var clientCredential: ClientCredential?
    var maxUploadBytes: Int64?
    var retryInitialDelay: Double?
    var retryMaximumDelay: Double?
    var maxAttempts: Int?
    var maxAge: Double?
    var maxDeliveries: Int?
    var delivery: OutboundSettings.DeliveryMode?

    /// Adds what was given to `partner`, replacing single values and appending lists.
    func apply(to partner: inout Partner) throws(WharfError) {
        if let displayName { partner.displayName = displayName }
        partner.identities += identities
        if let trustCAPEM { partner.trustCAPEM = trustCAPEM }
        for pem in pinnedCertificatesPEM where !(partner.pinnedCertificatesPEM ?? "").contains(pem) {
            partner.pinnedCertificatesPEM = (partner.pinnedCertificatesPEM ?? "") + pem
        }
        if let url { partner.outbound.url = url }
        if let serverCAPEM { partner.outbound.serverCAPEM = serverCAPEM }
        for pin in pins {
            guard !partner.outbound.pins.contains(pin) else {
                throw .invalid("\(partner.name) already has the pin \(pin)", fix: "`wharf partner show \(partner.name)` lists its pins")
            }
            partner.outbound.pins.append(pin)
        }
        if let clientCredential { partner.outbound.clientCredential = clientCredential }
        if let maxUploadBytes { partner.maxUploadBytes = maxUploadBytes }
        if let retryInitialDelay { partner.outbound.retryInitialDelay = retryInitialDelay }
        if let retryMaximumDelay { partner.outbound.retryMaximumDelay = retryMaximumDelay }
        if let maxAttempts { partner.outbound.maxAttempts = maxAttempts }
        if let maxAge { partner.outbound.maxAge = maxAge }
        if let maxDeliveries { partner.outbound.maxDeliveries = maxDeliveries }
        if let delivery { partner.outbound.delivery = delivery }
        try applyRevocationList(to: &partner)
        if identities.contains(where: \.isSubject) {
            try Self.checkSubjectsCanBeIssued(partner)
        }
    }

    /// A subject identity matches only a certificate a CA the listener trusts for the
    /// partner issued: the partner's own `--trust-ca`. (Certificates Wharf's partner CA
    /// issues are bound by fingerprint, by `partner issue`.) Without one the identity could
    /// never match, and the partner's handshakes would fail with "unknown CA".
    static func checkSubjectsCanBeIssued(_ partner: Partner) throws(WharfError) {
        guard partner.trustCAPEM == nil, partner.identities.contains(where: \.isSubject) else { return }
        throw .invalid(
            "a subject identity needs a CA that issues the partner's certificates, and \(partner.name) has no --trust-ca",
            fix: "give the partner's CA with --trust-ca; for a certificate from Wharf's own CA use `wharf partner issue` (or --fingerprint), or give --trust-ca with pki/ca.crt for subjects it signed by hand"
        )
    }

    /// Sets the CRL, which must be signed by the partner's own CA; and refuses a partner
    /// left with a CRL but no CA.
    private func applyRevocationList(to partner: inout Partner) throws(WharfError) {
        guard let trustCAPEM = partner.trustCAPEM else {
            if revocationList != nil || partner.revocationListPath != nil {
                throw .invalid(
                    "a CRL goes with the partner's own CA, and \(partner.name) has no --trust-ca",
                    fix: "give --trust-ca with the CA that signs the list, or --remove-crl with --remove-trust-ca"
                )
            }
            return
        }
        guard let (path, list) = revocationList else { return }
        let authorities = try Certificate.parseAll(pem: trustCAPEM, source: "the trust CA of \(partner.name)")
        guard list.signer(among: authorities) != nil else {
            throw .invalid(
                "the CRL \(EscapedText.terminal(path)) is not signed by \(partner.name)'s --trust-ca (it names \(EscapedText.terminal(list.issuer.description)) as its issuer)",
                fix: "give the CRL its CA publishes, or the CA that signs it with --trust-ca"
            )
        }
        partner.revocationListPath = path
        if list.isStale(at: Date()), let nextUpdate = list.nextUpdate {
            Console.error("warning: the CRL \(path) is past its next update (\(nextUpdate.utcTimestamp())); \(partner.name)'s certificates are refused until the file holds a current one")
        }
    }
}
