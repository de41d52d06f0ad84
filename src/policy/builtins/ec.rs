//! What `ring` does not offer on the NIST curves: ECDSA verification on P-521 (JWS `ES512`,
//! X.509 signatures by P-521 keys) and checking that a public key's point is on its curve
//! (Go refuses such a key when it is read; `ring` only fails the verification).
//!
//! Verification only: every value here is public (key, message, signature), so the arithmetic
//! need not be constant-time, and big integers from `num-bigint` (already built for regorus)
//! are enough. Points are in Jacobian coordinates so that one inversion serves a whole
//! verification. Checked against OPA (Go's crypto/ecdsa) by the differential corpus.

use std::sync::LazyLock;

use num_bigint::BigUint;
use ring::digest;

use super::keys::Curve as Named;

/// Bytes of one coordinate or one signature half.
pub const SIZE: usize = 66;

struct Curve {
    p: BigUint,
    n: BigUint,
    b: BigUint,
    g: (BigUint, BigUint),
}

fn hex(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 16).expect("the curve constants are hexadecimal")
}

/// SEC 2, secp521r1 (a = -3).
static P521: LazyLock<Curve> = LazyLock::new(|| Curve {
    p: (BigUint::from(1u8) << 521u32) - 1u8,
    n: hex(concat!(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"
    )),
    b: hex(concat!(
        "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E1",
        "56193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00"
    )),
    g: (
        hex(concat!(
            "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBA",
            "A14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66"
        )),
        hex(concat!(
            "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C",
            "97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650"
        )),
    ),
});

/// SEC 2's field primes and b of P-256 and P-384 (a = -3), for the on-curve check only.
static P256: LazyLock<(BigUint, BigUint)> = LazyLock::new(|| {
    (
        hex("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF"),
        hex("5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B"),
    )
});
static P384: LazyLock<(BigUint, BigUint)> = LazyLock::new(|| {
    (
        hex(concat!(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF",
            "0000000000000000FFFFFFFF"
        )),
        hex(concat!(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC6563",
            "98D8A2ED19D2A85C8EDD3EC2AEF"
        )),
    )
});

/// Bytes of one coordinate on `curve`.
pub fn coordinate_size(curve: Named) -> usize {
    match curve {
        Named::P256 => 32,
        Named::P384 => 48,
        Named::P521 => SIZE,
    }
}

/// Whether the uncompressed point (0x04 || x || y) lies on `curve`: y² = x³ − 3x + b, with
/// both coordinates below the prime.
pub fn on_curve(curve: Named, point: &[u8]) -> bool {
    let size = coordinate_size(curve);
    if point.len() != 1 + 2 * size || point[0] != 0x04 {
        return false;
    }
    let (p, b) = match curve {
        Named::P256 => (&P256.0, &P256.1),
        Named::P384 => (&P384.0, &P384.1),
        Named::P521 => (&P521.p, &P521.b),
    };
    let x = BigUint::from_bytes_be(&point[1..=size]);
    let y = BigUint::from_bytes_be(&point[1 + size..]);
    if &x >= p || &y >= p {
        return false;
    }
    let f = Field(p);
    let x3 = f.mul(&f.mul(&x, &x), &x);
    f.mul(&y, &y) == f.add(&f.sub(&x3, &f.small(3, &x)), b)
}

/// A point in Jacobian coordinates; z = 0 is the point at infinity.
#[derive(Clone)]
struct Point {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

/// Arithmetic modulo the field prime.
struct Field<'a>(&'a BigUint);

impl Field<'_> {
    fn add(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + b) % self.0
    }
    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + self.0 - b) % self.0
    }
    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a * b) % self.0
    }
    fn small(&self, k: u8, a: &BigUint) -> BigUint {
        (a * k) % self.0
    }
    fn inv(&self, a: &BigUint) -> BigUint {
        a.modpow(&(self.0 - 2u8), self.0)
    }

    fn double(&self, q: &Point) -> Point {
        if q.z == BigUint::ZERO || q.y == BigUint::ZERO {
            return infinity();
        }
        // dbl-2001-b, for a = -3.
        let delta = self.mul(&q.z, &q.z);
        let gamma = self.mul(&q.y, &q.y);
        let beta = self.mul(&q.x, &gamma);
        let alpha = self.small(
            3,
            &self.mul(&self.sub(&q.x, &delta), &self.add(&q.x, &delta)),
        );
        let x = self.sub(&self.mul(&alpha, &alpha), &self.small(8, &beta));
        let yz = self.add(&q.y, &q.z);
        let z = self.sub(&self.sub(&self.mul(&yz, &yz), &gamma), &delta);
        let y = self.sub(
            &self.mul(&alpha, &self.sub(&self.small(4, &beta), &x)),
            &self.small(8, &self.mul(&gamma, &gamma)),
        );
        Point { x, y, z }
    }

    fn add_points(&self, a: &Point, b: &Point) -> Point {
        if a.z == BigUint::ZERO {
            return b.clone();
        }
        if b.z == BigUint::ZERO {
            return a.clone();
        }
        // add-2007-bl.
        let z1z1 = self.mul(&a.z, &a.z);
        let z2z2 = self.mul(&b.z, &b.z);
        let u1 = self.mul(&a.x, &z2z2);
        let u2 = self.mul(&b.x, &z1z1);
        let s1 = self.mul(&self.mul(&a.y, &b.z), &z2z2);
        let s2 = self.mul(&self.mul(&b.y, &a.z), &z1z1);
        let h = self.sub(&u2, &u1);
        let r = self.small(2, &self.sub(&s2, &s1));
        if h == BigUint::ZERO {
            return if r == BigUint::ZERO {
                self.double(a)
            } else {
                infinity()
            };
        }
        let i = {
            let h2 = self.small(2, &h);
            self.mul(&h2, &h2)
        };
        let j = self.mul(&h, &i);
        let v = self.mul(&u1, &i);
        let x = self.sub(&self.sub(&self.mul(&r, &r), &j), &self.small(2, &v));
        let y = self.sub(
            &self.mul(&r, &self.sub(&v, &x)),
            &self.small(2, &self.mul(&s1, &j)),
        );
        let zz = self.add(&a.z, &b.z);
        let z = self.mul(&self.sub(&self.sub(&self.mul(&zz, &zz), &z1z1), &z2z2), &h);
        Point { x, y, z }
    }
}

fn infinity() -> Point {
    Point {
        x: BigUint::from(1u8),
        y: BigUint::from(1u8),
        z: BigUint::ZERO,
    }
}

fn affine(x: BigUint, y: BigUint) -> Point {
    Point {
        x,
        y,
        z: BigUint::from(1u8),
    }
}

/// Whether `sig` (r || s, 66 bytes each, as JWS writes it) signs `msg` with SHA-512 for the
/// uncompressed point `point` (0x04 || x || y). A malformed key or signature verifies nothing.
pub fn verify(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    verify_digest(point, digest::digest(&digest::SHA512, msg).as_ref(), sig)
}

/// A DER `ECDSA-Sig-Value` (as X.509 writes signatures) in the fixed r || s form.
pub fn fixed_from_der(der: &[u8]) -> Option<Vec<u8>> {
    let (tag, seq, _, rest) = super::keys::tlv(der).ok()?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (rt, r, _, after) = super::keys::tlv(seq).ok()?;
    let (st, s, _, end) = super::keys::tlv(after).ok()?;
    if rt != 0x02 || st != 0x02 || !end.is_empty() {
        return None;
    }
    let mut out = vec![0u8; 2 * SIZE];
    for (half, int) in [(0, r), (SIZE, s)] {
        let int = match int {
            [0, rest @ ..] => rest,
            _ => int,
        };
        if int.len() > SIZE {
            return None;
        }
        out[half + SIZE - int.len()..half + SIZE].copy_from_slice(int);
    }
    Some(out)
}

/// As `verify`, for a digest already made (any hash up to 521 bits, used whole).
pub fn verify_digest(point: &[u8], hash: &[u8], sig: &[u8]) -> bool {
    let c = &*P521;
    let f = Field(&c.p);
    if !on_curve(Named::P521, point) || sig.len() != 2 * SIZE {
        return false;
    }
    let qx = BigUint::from_bytes_be(&point[1..=SIZE]);
    let qy = BigUint::from_bytes_be(&point[1 + SIZE..]);
    let r = BigUint::from_bytes_be(&sig[..SIZE]);
    let s = BigUint::from_bytes_be(&sig[SIZE..]);
    if r == BigUint::ZERO || s == BigUint::ZERO || r >= c.n || s >= c.n {
        return false;
    }
    // Every hash X.509 and JWS pair with P-521 is shorter than the order: no truncation.
    let e = BigUint::from_bytes_be(hash);
    let w = s.modpow(&(&c.n - 2u8), &c.n);
    let u1 = (&e * &w) % &c.n;
    let u2 = (&r * &w) % &c.n;

    // u1·G + u2·Q by Shamir's trick: one doubling chain for both scalars.
    let g = affine(c.g.0.clone(), c.g.1.clone());
    let q = affine(qx, qy);
    let gq = f.add_points(&g, &q);
    let mut acc = infinity();
    let bits = u1.bits().max(u2.bits());
    for i in (0..bits).rev() {
        acc = f.double(&acc);
        acc = match (u1.bit(i), u2.bit(i)) {
            (true, true) => f.add_points(&acc, &gq),
            (true, false) => f.add_points(&acc, &g),
            (false, true) => f.add_points(&acc, &q),
            (false, false) => acc,
        };
    }
    if acc.z == BigUint::ZERO {
        return false;
    }
    let zinv = f.inv(&acc.z);
    let x = f.mul(&acc.x, &f.mul(&zinv, &zinv));
    x % &c.n == r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(x: &BigUint, y: &BigUint) -> bool {
        let mut point = vec![4u8];
        for v in [x, y] {
            let bytes = v.to_bytes_be();
            point.extend(std::iter::repeat_n(0, SIZE - bytes.len()));
            point.extend(bytes);
        }
        on_curve(Named::P521, &point)
    }

    #[test]
    fn the_generator_is_on_the_curve_and_has_the_curve_order() {
        let c = &*P521;
        let f = Field(&c.p);
        assert!(on(&c.g.0, &c.g.1));
        let g = affine(c.g.0.clone(), c.g.1.clone());
        // 2G by doubling and by addition must agree once made affine.
        let d = f.double(&g);
        let (dz, az) = (f.inv(&d.z), f.inv(&f.add_points(&g, &g).z));
        let a = f.add_points(&g, &g);
        assert_eq!(f.mul(&d.x, &f.mul(&dz, &dz)), f.mul(&a.x, &f.mul(&az, &az)));
        let dx = f.mul(&d.x, &f.mul(&dz, &dz));
        let dy = f.mul(&d.y, &f.mul(&dz, &f.mul(&dz, &dz)));
        assert!(on(&dx, &dy));
        // n·G is the point at infinity.
        let mut acc = infinity();
        for i in (0..c.n.bits()).rev() {
            acc = f.double(&acc);
            if c.n.bit(i) {
                acc = f.add_points(&acc, &g);
            }
        }
        assert_eq!(acc.z, BigUint::ZERO);
    }
}
