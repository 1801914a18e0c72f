//! A ticket's code as a QR code, drawn as a small SVG, and the lookup of one ticket of the
//! caller's for it.
//!
//! The QR code holds exactly the signed code (`TR1.<payload>.<signature>`, byte mode, error
//! correction level M): scanning it gives the text the gate's `POST /api/tickets/verify`
//! takes, so showing the QR code and pasting the code are the same thing. The encoder is
//! the `qrcode` crate's (its matrix only); the SVG is written here, one path whose
//! sub-paths are the horizontal runs of dark modules, on a white square with the standard
//! quiet zone of four modules: about half the size of one rectangle per module.

use std::fmt::Write as _;

use qrcode::{Color, EcLevel, QrCode};
use ticket_core::model::hold::HoldState;
use ticket_core::{Error, Refusal, TicketRush, UserId};

use super::{TicketClaims, TicketId, TicketSigner, tickets_of};

/// The quiet zone around the symbol, in modules (ISO/IEC 18004 asks for four).
pub const QUIET_ZONE: usize = 4;

/// The drawn size of one module, in CSS pixels (the image scales: it has a `viewBox`).
pub const MODULE_PX: usize = 4;

/// Why `text` has no QR code: longer than a QR code holds (a ticket code never is).
#[derive(Debug, thiserror::Error)]
#[error("no QR code for this text: {0}")]
pub struct QrError(qrcode::types::QrError);

/// `text` as a QR code (byte mode, error correction level M), drawn as an SVG document:
/// `viewBox="0 0 n n"` in modules, quiet zone included, dark modules black on white.
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(QrError)?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let px = size * MODULE_PX;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
    );
    for (y, row) in colors.chunks(width.max(1)).enumerate() {
        let mut x = 0;
        while x < row.len() {
            if row[x] == Color::Light {
                x += 1;
                continue;
            }
            let start = x;
            while x < row.len() && row[x] == Color::Dark {
                x += 1;
            }
            let run = x - start;
            // Writing to a String cannot fail.
            let _ = write!(
                svg,
                "M{} {}h{run}v1h-{run}z",
                start + QUIET_ZONE,
                y + QUIET_ZONE
            );
        }
    }
    svg.push_str("\"/></svg>");
    Ok(svg)
}

/// Why one ticket's code is not given to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TicketCodeError {
    /// No such ticket among the caller's: no such reservation, another user's, or a number
    /// beyond the reservation's units (all three answered alike).
    #[error("ticket not found")]
    NotFound,
    /// The caller's reservation is not CONFIRMED (held, paying, cancelled, refunded…): its
    /// tickets are not valid.
    #[error("its reservation is {}, not confirmed", .0.as_str().to_lowercase())]
    NotConfirmed(HoldState),
    /// Reading the reservation failed (storage).
    #[error(transparent)]
    Lookup(Error),
}

/// The signed code of the caller's ticket `ticket`: the same code `GET /api/me/tickets`
/// lists for it, given only while its reservation is `user`'s and CONFIRMED. A ticket the
/// gate already let in keeps its code (the gate answers that it was used).
pub async fn my_ticket_code(
    rush: &TicketRush,
    signer: &TicketSigner,
    user: &UserId,
    ticket: TicketId,
) -> Result<String, TicketCodeError> {
    let hold = match rush.holds.get(ticket.hold(), user).await {
        Ok(hold) => hold,
        Err(Error::NotFound { .. } | Error::Refused(Refusal::NotOwner)) => {
            return Err(TicketCodeError::NotFound);
        }
        Err(e) => return Err(TicketCodeError::Lookup(e)),
    };
    if !tickets_of(&hold).iter().any(|line| line.id == ticket) {
        return Err(TicketCodeError::NotFound);
    }
    if hold.state != HoldState::Confirmed {
        return Err(TicketCodeError::NotConfirmed(hold.state));
    }
    Ok(signer.sign(&TicketClaims {
        ticket,
        session: hold.session,
        user: hold.user,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dark modules an SVG of [`qr_svg`] draws, as a matrix (quiet zone included).
    fn drawn(svg: &str) -> (usize, Vec<Vec<bool>>) {
        let size: usize = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut grid = vec![vec![false; size]; size];
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let (at, rest) = run.split_once('h').unwrap();
            let (x, y) = at.split_once(' ').unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            let len: usize = rest.split_once('v').unwrap().0.parse().unwrap();
            assert_eq!(rest, format!("{len}v1h-{len}z"));
            for cell in &mut grid[y][x..x + len] {
                assert!(!*cell, "runs do not overlap");
                *cell = true;
            }
        }
        (size, grid)
    }

    #[test]
    fn the_svg_draws_exactly_the_code_matrix() {
        let text = "TR1.eyJ0IjoiMDE5MGYwYzgtMDAwMC03MDAwLTgwMDAtMDAwMDAwMDAwMDAwLTEifQ.sig";
        let svg = qr_svg(text).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
        let width = code.width();
        let (size, grid) = drawn(&svg);
        assert_eq!(size, width + 2 * QUIET_ZONE);
        for (y, row) in grid.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                let inside = (QUIET_ZONE..QUIET_ZONE + width).contains(&x)
                    && (QUIET_ZONE..QUIET_ZONE + width).contains(&y);
                let expected = inside && code[(x - QUIET_ZONE, y - QUIET_ZONE)] == Color::Dark;
                assert_eq!(dark, expected, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_longest_ticket_code_fits_and_stays_small() {
        let svg = qr_svg(&"A".repeat(super::super::MAX_CODE_LEN)).unwrap();
        assert!(svg.len() < 64 * 1024, "{} bytes", svg.len());
        assert!(
            qr_svg(&"x".repeat(4000)).is_err(),
            "beyond a QR code's capacity"
        );
    }
}
