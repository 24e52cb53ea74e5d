import Testing
import WharfCore

@Suite struct SubjectNameTests {
    @Test(arguments: [
        "C = US, O = Acme, CN = x",
        "CN=x,O=Acme,C=US",
        "/C=US/O=Acme/CN=x",
        "cn=X, o=ACME, c=us",
        "commonName=x;organizationName=Acme;countryName=US",
        "2.5.4.3=x,2.5.4.10=Acme,2.5.4.6=US",
        "  CN =  x ,  O = Acme ,C=US  ",
    ])
    func spellingsOfOneNameMatch(_ text: String) throws {
        let reference = try SubjectName(parsing: "CN=x,O=Acme,C=US")
        #expect(try SubjectName(parsing: text).matchKey == reference.matchKey)
    }

    @Test func descriptionIsRFC4514InCanonicalOrderKeepingCase() throws {
        #expect(try SubjectName(parsing: "C = DE, O = Beta GmbH, OU = EDI, CN = gw1").description == "CN=gw1,OU=EDI,O=Beta GmbH,C=DE")
    }

    @Test func differentValuesDoNotMatch() throws {
        #expect(try SubjectName(parsing: "CN=x,O=Acme").matchKey != SubjectName(parsing: "CN=y,O=Acme").matchKey)
        #expect(try SubjectName(parsing: "CN=x,O=Acme").matchKey != SubjectName(parsing: "CN=x").matchKey)
    }

    @Test func escapesAndQuotesAreUndone() throws {
        let escaped = try SubjectName(parsing: #"CN=Acme\, Inc.,O=A\2BB"#)
        #expect(escaped.attributes.map(\.value) == ["Acme, Inc.", "A+B"])
        #expect(escaped.description == #"CN=Acme\, Inc.,O=A\+B"#)
        let quoted = try SubjectName(parsing: #"CN="Acme, Inc.",O=x"#)
        #expect(quoted.attributes.map(\.value) == ["Acme, Inc.", "x"])
    }

    @Test func multiValuedRDNsAreAccepted() throws {
        let name = try SubjectName(parsing: "CN=x+UID=42,O=Acme")
        #expect(name.attributes.map(\.type) == ["CN", "UID", "O"])
    }

    @Test(arguments: ["", "CN", "=x", "CN=x,,O=y", "NOSUCHTYPE=x", "CN=", #"CN="open"#, #"CN=x\"#, "CN=x,O"])
    func malformedNamesAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try SubjectName(parsing: text) }
    }

    @Test func attributesFromACertificateUseOIDs() throws {
        let name = try SubjectName(attributes: [("2.5.4.6", "US"), ("2.5.4.10", "Acme"), ("2.5.4.3", "x")])
        #expect(name.description == "CN=x,O=Acme,C=US")
    }
}
