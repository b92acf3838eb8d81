//! Figures: medians over runs, and the table printed at the end.

pub struct Row {
    pub scenario: &'static str,
    pub metric: String,
    pub service: f64,
    pub reference: Option<f64>,
    pub unit: &'static str,
    /// Whether higher is better (rates) or lower is (times).
    pub higher_is_better: bool,
    pub target: String,
    pub met: Option<bool>,
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

impl Row {
    /// service / reference for rates, reference / service for times: above 1 the service
    /// is faster.
    pub fn ratio(&self) -> Option<f64> {
        let reference = self.reference?;
        Some(if self.higher_is_better {
            self.service / reference
        } else {
            reference / self.service
        })
    }
}

pub fn print(rows: &[Row]) {
    println!(
        "| scenario | metric | service | reference | service/reference speed | target | met |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let reference = row
            .reference
            .map_or("-".to_owned(), |r| format!("{r:.1} {}", row.unit));
        let ratio = row
            .ratio()
            .map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0));
        let met = match row.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "-",
        };
        println!(
            "| {} | {} | {:.1} {} | {} | {} | {} | {} |",
            row.scenario, row.metric, row.service, row.unit, reference, ratio, row.target, met
        );
    }
}
