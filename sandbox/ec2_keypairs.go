package sandbox

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// EC2 key pairs. CreateKeyPair makes a real key and hands out the private
// half once, as AWS does; the sandbox keeps the public key in
// authorized_keys form.

func init() {
	register("ec2", "CreateKeyPair", ec2CreateKeyPair)
	register("ec2", "ImportKeyPair", ec2ImportKeyPair)
	register("ec2", "DeleteKeyPair", ec2DeleteKeyPair)
	register("ec2", "DescribeKeyPairs", ec2DescribeKeyPairs)
}

// colonHex writes a digest the way AWS shows RSA fingerprints.
func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}

// sha256Fingerprint is AWS's ED25519 fingerprint: the base64 SHA-256 of
// the SSH wire form of the public key.
func sha256Fingerprint(pub ssh.PublicKey) string {
	sum := sha256.Sum256(pub.Marshal())
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newKeyPair validates the name and tags common to create and import.
func (c *call) newKeyPair() (*KeyPair, *APIError) {
	name := c.p.Get("KeyName")
	if name == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter KeyName")
	}
	if len(name) > 255 {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter keyName is invalid. Length exceeds maximum of 255.", name)
	}
	if _, ok := c.r.KeyPairs[name]; ok {
		return nil, errf("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "key-pair")
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{ID: newID("key"), Name: name, Tags: Tags{}, Created: c.w.now()}
	for k, v := range tags["key-pair"] {
		kp.Tags[k] = v
	}
	return kp, nil
}

func authorizedKey(pub ssh.PublicKey, name string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + name
}

func ec2CreateKeyPair(c *call) (any, *APIError) {
	kp, err := c.newKeyPair()
	if err != nil {
		return nil, err
	}
	kp.Type = c.p.Get("KeyType")
	if kp.Type == "" {
		kp.Type = "rsa"
	}
	format := c.p.Get("KeyFormat")
	if format == "" {
		format = "pem"
	}
	if format != "pem" {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter keyFormat is invalid. The sandbox supports pem.", format)
	}
	var material string
	var pub ssh.PublicKey
	switch kp.Type {
	case "rsa":
		key, gerr := rsa.GenerateKey(rand.Reader, 2048)
		if gerr != nil {
			return nil, &APIError{Code: "InternalError", Message: gerr.Error(), Status: 500}
		}
		material = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
		sum := sha1.Sum(pkcs8)
		kp.Fingerprint = colonHex(sum[:])
		pub, _ = ssh.NewPublicKey(&key.PublicKey)
	case "ed25519":
		pk, sk, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, &APIError{Code: "InternalError", Message: gerr.Error(), Status: 500}
		}
		block, merr := ssh.MarshalPrivateKey(sk, "")
		if merr != nil {
			return nil, &APIError{Code: "InternalError", Message: merr.Error(), Status: 500}
		}
		material = string(pem.EncodeToMemory(block))
		pub, _ = ssh.NewPublicKey(pk)
		kp.Fingerprint = sha256Fingerprint(pub)
	default:
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter keyType is invalid. Valid values are rsa and ed25519.", kp.Type)
	}
	kp.PublicKey = authorizedKey(pub, kp.Name)
	c.r.KeyPairs[kp.Name] = kp
	return ec2Out(T("keyName", kp.Name), T("keyFingerprint", kp.Fingerprint), T("keyMaterial", material),
		T("keyPairId", kp.ID), renderTagSet(kp.Tags)), nil
}

func ec2ImportKeyPair(c *call) (any, *APIError) {
	kp, err := c.newKeyPair()
	if err != nil {
		return nil, err
	}
	raw := c.p.Get("PublicKeyMaterial")
	if raw == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter PublicKeyMaterial")
	}
	text, derr := base64.StdEncoding.DecodeString(raw)
	if derr != nil {
		text = []byte(raw)
	}
	pub, _, _, _, perr := ssh.ParseAuthorizedKey(text)
	if perr != nil {
		return nil, errf("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	switch pub.Type() {
	case ssh.KeyAlgoRSA:
		kp.Type = "rsa"
		cpk := pub.(ssh.CryptoPublicKey).CryptoPublicKey()
		if k, ok := cpk.(*rsa.PublicKey); ok && (k.N.BitLen() < 1024 || k.N.BitLen() > 16384) {
			return nil, errf("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
		}
		der, _ := x509.MarshalPKIXPublicKey(cpk)
		sum := md5.Sum(der)
		kp.Fingerprint = colonHex(sum[:])
	case ssh.KeyAlgoED25519:
		kp.Type = "ed25519"
		kp.Fingerprint = sha256Fingerprint(pub)
	default:
		return nil, errf("InvalidKey.Format", "Key is not supported: only RSA and ED25519 keys can be imported")
	}
	kp.PublicKey = authorizedKey(pub, kp.Name)
	c.r.KeyPairs[kp.Name] = kp
	return ec2Out(T("keyName", kp.Name), T("keyFingerprint", kp.Fingerprint), T("keyPairId", kp.ID), renderTagSet(kp.Tags)), nil
}

// DeleteKeyPair succeeds for a name or id that does not exist, as in EC2.
func ec2DeleteKeyPair(c *call) (any, *APIError) {
	name, id := c.p.Get("KeyName"), c.p.Get("KeyPairId")
	if name == "" && id == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter KeyName or KeyPairId")
	}
	for n, kp := range c.r.KeyPairs {
		if (name != "" && n == name) || (id != "" && kp.ID == id) {
			delete(c.r.KeyPairs, n)
			return ec2Out(B("return", true), T("keyPairId", kp.ID)), nil
		}
	}
	return ec2Out(B("return", true)), nil
}

func ec2DescribeKeyPairs(c *call) (any, *APIError) {
	all := make([]*KeyPair, 0, len(c.r.KeyPairs))
	for _, kp := range c.r.KeyPairs {
		all = append(all, kp)
	}
	withPub, err := c.p.Bool("IncludePublicKey", false)
	if err != nil {
		return nil, err
	}
	keys, err := describe(c, all, describeSpec[*KeyPair]{
		id: func(k *KeyPair) string { return k.Name }, tags: func(k *KeyPair) Tags { return k.Tags },
		created: func(k *KeyPair) time.Time { return k.Created },
		fields: func(k *KeyPair) FilterFields {
			return fieldMap(map[string][]string{"key-pair-id": one(k.ID), "key-name": one(k.Name),
				"fingerprint": one(k.Fingerprint), "key-type": one(k.Type)})
		},
	},
		selector[*KeyPair]{values: c.p.List("KeyName"), key: func(k *KeyPair) string { return k.Name },
			notFound: func(m []string) *APIError { return notFound("InvalidKeyPair.NotFound", m[0], "key pair") }},
		selector[*KeyPair]{values: c.p.List("KeyPairId"), key: func(k *KeyPair) string { return k.ID },
			notFound: func(m []string) *APIError { return notFound("InvalidKeyPair.NotFound", m[0], "key pair ID") }})
	if err != nil {
		return nil, err
	}
	return ec2Out(List("keySet", Items("item", keys, func(k *KeyPair) []*X {
		var pub *X
		if withPub {
			pub = T("publicKey", k.PublicKey)
		}
		return []*X{T("keyPairId", k.ID), T("keyName", k.Name), T("keyFingerprint", k.Fingerprint), T("keyType", k.Type),
			renderTagSet(k.Tags), Time("createTime", k.Created), pub}
	}))), nil
}
