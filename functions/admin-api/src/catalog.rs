//! The price book and stock.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StockBody {
    available: u64,
}

impl AdminApi {
    pub(crate) async fn publish_price_book(
        &self,
        body: &[u8],
        csv: bool,
    ) -> Result<Response<Body>, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("malformed_body", "the price book must be UTF-8"))?;
        // Tier rows are checked against the current rule set.
        let rules = self.table.current_rule_set().await?.ok_or_else(|| {
            ApiError::conflict(
                "no_rule_set",
                "publish a rule set before a price book: tier prices refer to its tiers",
            )
        })?;
        let parsed = if csv {
            PriceBookDraft::from_csv(text, &rules.rules)
        } else {
            PriceBookDraft::from_json(text, &rules.rules)
        };
        let draft = parsed.map_err(|errors| {
            let first = errors
                .first()
                .map(|e| format!("line {} {}: {}", e.line, e.field, e.message))
                .unwrap_or_default();
            ApiError::unprocessable(
                "invalid_price_book",
                format!(
                    "{} problem(s); the book was not published. First: {first}",
                    errors.len()
                ),
            )
            .with_errors(serde_json::to_value(&errors).expect("row errors serialise"))
        })?;
        let published = self.table.publish_price_book(&draft, Utc::now()).await?;
        tracing::info!(
            version = published.version,
            skus = draft.skus.len(),
            "price book published"
        );
        // Orders held for a SKU the book lacked can now be counted.
        let released = self.release_after_catalog_change().await?;
        Ok(http::json(
            StatusCode::CREATED,
            &json!({"version": published.version, "published_at": published.published_at, "skus": draft.skus.len(), "promotions": draft.promotions.len(), "released": released}),
        ))
    }

    pub(crate) async fn get_price_book(&self) -> Result<Response<Body>, ApiError> {
        let book = self.table.current_book().await?.ok_or_else(|| {
            ApiError::not_found("no_price_book", "no price book has been published")
        })?;
        let promotions = self.table.book_promotions(book.version).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"version": book.version, "published_at": book.published_at, "promotions": promotions}),
        ))
    }

    pub(crate) async fn put_stock(
        &self,
        sku: Sku,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let b: StockBody = http::parse_json(body)?;
        if b.available > 1_000_000_000 {
            return Err(ApiError::unprocessable(
                "invalid_stock",
                "available must be at most 1,000,000,000",
            ));
        }
        if !self.table.sku_in_current_book(&sku).await? {
            return Err(ApiError::unprocessable(
                "unknown_sku",
                format!("SKU {sku} is not in the current price book; publish its prices first"),
            ));
        }
        self.table.set_stock(&sku, b.available, Utc::now()).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"sku": sku, "available": b.available}),
        ))
    }

    pub(crate) async fn get_stock(&self, sku: Sku) -> Result<Response<Body>, ApiError> {
        let available = self.table.stock(&sku).await?.ok_or_else(|| {
            ApiError::not_found("stock_not_found", format!("SKU {sku} has no stock record"))
        })?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"sku": sku, "available": available}),
        ))
    }
}
