//! A buyer's province, as one code whatever platform sent it.
//!
//! The code is the ISO 3166-2 subdivision code (`CN-ZJ` for 浙江), so that
//! 抖店's `浙江省`, 有赞's `浙江省` and Shopify's `province_code: "ZJ"` with
//! `country_code: "CN"` all count toward one region.

pub use tier_domain::region::Region;

/// A Chinese provincial-level division as a buyer or platform writes it:
/// `浙江省` or `浙江`, `Zhejiang`, `Inner Mongolia`, `Hong Kong SAR`. Case
/// and surrounding space do not matter.
pub fn from_china_province(text: &str) -> Option<Region> {
    let key = normalise(text);
    if key.is_empty() {
        return None;
    }
    // Addresses typed by buyers add a generic suffix to the short name
    // (`广西自治区`, `Zhejiang Sheng`) as often as they use the official
    // full name, so each suffix is also tried once removed.
    let bare = SUFFIXES
        .iter()
        .filter_map(|suffix| key.strip_suffix(suffix))
        .filter(|rest| !rest.is_empty());
    std::iter::once(key.as_str())
        .chain(bare)
        .find_map(province_named)
        .map(|p| china(p.code))
}

/// A Shopify address's `country_code` and `province_code`.
///
/// For China the province must be one the table knows, written as the
/// ISO letters (`ZJ`), prefixed (`CN-ZJ`), or as Shopify's own code
/// where it differs from ISO (`YZ` for 西藏). Shopify lists Hong Kong,
/// Macao and Taiwan as countries (`HK`, `MO`, `TW`) while 抖店 and 有赞
/// send them as provinces (`香港特别行政区`); they become `CN-HK`,
/// `CN-MO`, `CN-TW` whatever their province code, so that one region
/// counts them whichever platform sold. Any other country's pair is
/// kept as `XX-YYY` when both parts look like codes.
pub fn from_codes(country_code: &str, province_code: &str) -> Option<Region> {
    let country = country_code.trim().to_ascii_uppercase();
    let province = province_code.trim().to_ascii_uppercase();
    match country.as_str() {
        "CN" => {
            let letters = province.strip_prefix("CN-").unwrap_or(&province);
            let code = SHOPIFY_CODES
                .iter()
                .find(|(shopify, _)| *shopify == letters)
                .map_or(letters, |(_, iso)| *iso);
            CHINA.iter().find(|p| p.code == code).map(|p| china(p.code))
        }
        "HK" | "MO" | "TW" => Some(china(&country)),
        _ => Region::parse(&format!("{country}-{province}")).ok(),
    }
}

fn china(code: &str) -> Region {
    Region::parse(&format!("CN-{code}")).expect("the table's codes are ISO codes")
}

/// Case, spaces and punctuation vary between platforms and buyers
/// (`Nei Mongol`, `nei-mongol`, `Hong Kong`, `HongKong`); only letters and CJK characters
/// tell provinces apart.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn province_named(key: &str) -> Option<&'static Province> {
    CHINA
        .iter()
        .find(|p| p.names().any(|name| normalise(name) == key))
}

/// Each is tried on its own, once, at the end of a name: the official
/// suffixes with the ethnic group (`壮族自治区`) and the generic ones
/// buyers use instead (`自治区`, `Province`).
const SUFFIXES: &[&str] = &[
    "specialadministrativeregion",
    "autonomousregion",
    "municipality",
    "province",
    "zizhiqu",
    "sheng",
    "city",
    "sar",
    "shi",
    "特别行政区",
    "特別行政區",
    "维吾尔自治区",
    "壮族自治区",
    "回族自治区",
    "自治区",
    "省",
    "市",
];

/// Shopify's province codes for China where they are not ISO's: its
/// address data keeps the older `YZ` for 西藏 (ISO's `XZ` is an alternate
/// there).
const SHOPIFY_CODES: &[(&str, &str)] = &[("YZ", "XZ")];

struct Province {
    /// ISO 3166-2:CN letters, without the `CN-`.
    code: &'static str,
    /// The official name, with its suffix (省, 市, 自治区, 特别行政区).
    full: &'static str,
    /// The name without the suffix, as most addresses write it.
    short: &'static str,
    pinyin: &'static str,
    /// English names and traditional characters, as Shopify's address
    /// data and Hong Kong, Macao and Taiwan buyers write them.
    also: &'static [&'static str],
}

impl Province {
    fn names(&self) -> impl Iterator<Item = &'static str> {
        [self.full, self.short, self.pinyin]
            .into_iter()
            .chain(self.also.iter().copied())
    }
}

const fn p(
    code: &'static str,
    full: &'static str,
    short: &'static str,
    pinyin: &'static str,
    also: &'static [&'static str],
) -> Province {
    Province {
        code,
        full,
        short,
        pinyin,
        also,
    }
}

/// The 34 provincial-level divisions, in GB/T 2260 order.
const CHINA: [Province; 34] = [
    p("BJ", "北京市", "北京", "Beijing", &[]),
    p("TJ", "天津市", "天津", "Tianjin", &[]),
    p("HE", "河北省", "河北", "Hebei", &[]),
    p("SX", "山西省", "山西", "Shanxi", &[]),
    p(
        "NM",
        "内蒙古自治区",
        "内蒙古",
        "Neimenggu",
        &["Nei Mongol", "Inner Mongolia", "內蒙古"],
    ),
    p("LN", "辽宁省", "辽宁", "Liaoning", &[]),
    p("JL", "吉林省", "吉林", "Jilin", &[]),
    p("HL", "黑龙江省", "黑龙江", "Heilongjiang", &[]),
    p("SH", "上海市", "上海", "Shanghai", &[]),
    p("JS", "江苏省", "江苏", "Jiangsu", &[]),
    p("ZJ", "浙江省", "浙江", "Zhejiang", &[]),
    p("AH", "安徽省", "安徽", "Anhui", &[]),
    p("FJ", "福建省", "福建", "Fujian", &[]),
    p("JX", "江西省", "江西", "Jiangxi", &[]),
    p("SD", "山东省", "山东", "Shandong", &[]),
    p("HA", "河南省", "河南", "Henan", &[]),
    p("HB", "湖北省", "湖北", "Hubei", &[]),
    p("HN", "湖南省", "湖南", "Hunan", &[]),
    p("GD", "广东省", "广东", "Guangdong", &[]),
    p(
        "GX",
        "广西壮族自治区",
        "广西",
        "Guangxi",
        &["Guangxi Zhuang"],
    ),
    p("HI", "海南省", "海南", "Hainan", &[]),
    p("CQ", "重庆市", "重庆", "Chongqing", &[]),
    p("SC", "四川省", "四川", "Sichuan", &[]),
    p("GZ", "贵州省", "贵州", "Guizhou", &[]),
    p("YN", "云南省", "云南", "Yunnan", &[]),
    p("XZ", "西藏自治区", "西藏", "Xizang", &["Tibet"]),
    // 陕西 and 山西 are both "Shanxi" in toneless pinyin; the doubled vowel
    // is the official spelling that keeps them apart.
    p("SN", "陕西省", "陕西", "Shaanxi", &[]),
    p("GS", "甘肃省", "甘肃", "Gansu", &[]),
    p("QH", "青海省", "青海", "Qinghai", &[]),
    p("NX", "宁夏回族自治区", "宁夏", "Ningxia", &["Ningxia Hui"]),
    p(
        "XJ",
        "新疆维吾尔自治区",
        "新疆",
        "Xinjiang",
        &["Xinjiang Uygur", "Xinjiang Uyghur"],
    ),
    p("TW", "台湾省", "台湾", "Taiwan", &["台灣", "臺灣"]),
    p(
        "HK",
        "香港特别行政区",
        "香港",
        "Xianggang",
        &["Hong Kong", "香港特別行政區"],
    ),
    p(
        "MO",
        "澳门特别行政区",
        "澳门",
        "Aomen",
        &["Macau", "Macao", "澳門", "澳門特別行政區"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    const ISO_CODES: [&str; 34] = [
        "BJ", "TJ", "HE", "SX", "NM", "LN", "JL", "HL", "SH", "JS", "ZJ", "AH", "FJ", "JX", "SD",
        "HA", "HB", "HN", "GD", "GX", "HI", "CQ", "SC", "GZ", "YN", "XZ", "SN", "GS", "QH", "NX",
        "XJ", "TW", "HK", "MO",
    ];

    fn code(region: Option<Region>) -> Option<String> {
        region.map(|r| r.code().to_owned())
    }

    #[test]
    fn every_iso_code_is_in_the_table_exactly_once() {
        for iso in ISO_CODES {
            let n = CHINA.iter().filter(|p| p.code == iso).count();
            assert_eq!(n, 1, "{iso}");
        }
        assert!(CHINA.iter().all(|p| ISO_CODES.contains(&p.code)));
    }

    #[test]
    fn every_name_maps_to_its_own_code_and_no_other() {
        for p in &CHINA {
            let want = Some(format!("CN-{}", p.code));
            for name in p.names() {
                assert_eq!(
                    code(crate::region::from_china_province(name)),
                    want,
                    "{name}"
                );
                let holders = CHINA
                    .iter()
                    .filter(|q| q.names().any(|n| normalise(n) == normalise(name)))
                    .count();
                assert_eq!(holders, 1, "{name} is claimed twice");
            }
            assert!(p.full.starts_with(p.short), "{}", p.full);
        }
    }

    #[test]
    fn suffixes_case_and_space_do_not_matter() {
        for (text, want) in [
            ("  浙江省 ", "CN-ZJ"),
            ("浙江", "CN-ZJ"),
            ("ZHEJIANG", "CN-ZJ"),
            ("zhejiang sheng", "CN-ZJ"),
            ("Zhejiang Province", "CN-ZJ"),
            ("北京市", "CN-BJ"),
            ("Beijing Shi", "CN-BJ"),
            ("内蒙古", "CN-NM"),
            ("nei mongol", "CN-NM"),
            ("Inner Mongolia Autonomous Region", "CN-NM"),
            ("广西自治区", "CN-GX"),
            ("Guangxi Zhuang Autonomous Region", "CN-GX"),
            ("西藏自治区", "CN-XZ"),
            ("Tibet", "CN-XZ"),
            ("宁夏回族自治区", "CN-NX"),
            ("新疆维吾尔自治区", "CN-XJ"),
            ("新疆自治区", "CN-XJ"),
            ("香港特别行政区", "CN-HK"),
            ("Hong Kong SAR", "CN-HK"),
            ("hongkong", "CN-HK"),
            ("澳门特别行政区", "CN-MO"),
            ("Macao", "CN-MO"),
            ("macau", "CN-MO"),
            ("台湾省", "CN-TW"),
            ("Shanxi", "CN-SX"),
            ("Shaanxi", "CN-SN"),
        ] {
            assert_eq!(
                code(crate::region::from_china_province(text)).as_deref(),
                Some(want),
                "{text}"
            );
        }
    }

    #[test]
    fn what_is_not_a_province_is_refused() {
        for text in [
            "",
            "  ",
            "省",
            "自治区",
            "Kentucky",
            "杭州市",
            "Province",
            "ZJ",
        ] {
            assert_eq!(crate::region::from_china_province(text), None, "{text:?}");
        }
    }

    #[test]
    fn shopify_codes() {
        for (country, province, want) in [
            ("CN", "ZJ", Some("CN-ZJ")),
            ("cn", " zj ", Some("CN-ZJ")),
            ("CN", "CN-ZJ", Some("CN-ZJ")),
            ("CN", "YZ", Some("CN-XZ")),
            ("CN", "XZ", Some("CN-XZ")),
            ("CN", "NM", Some("CN-NM")),
            ("CN", "QQ", None),
            ("CN", "", None),
            ("HK", "KL", Some("CN-HK")),
            ("MO", "", Some("CN-MO")),
            ("TW", "", Some("CN-TW")),
            ("US", "KY", Some("US-KY")),
            ("us", "ky", Some("US-KY")),
            ("GB", "ENG", Some("GB-ENG")),
            ("US", "", None),
            ("", "KY", None),
            ("US", "KENT", None),
            ("US", "K-Y", None),
            ("U S", "KY", None),
            ("美国", "KY", None),
        ] {
            assert_eq!(
                code(crate::region::from_codes(country, province)).as_deref(),
                want,
                "{country:?} {province:?}"
            );
        }
        for iso in ISO_CODES {
            assert_eq!(
                code(crate::region::from_codes("CN", iso)),
                Some(format!("CN-{iso}"))
            );
        }
    }
}
