//! Campaign and CampaignMember operations on top of the generic record calls.

use serde_json::{Value, json};

use super::client::Client;
use super::error::{ApiError, Error, Result};
use super::id::SfId;
use super::records::{Fields, RecordWrite};
use super::soql::{quote, quote_list};

/// The CampaignMember field that holds a person of this id's kind.
pub fn member_field(person: &SfId) -> Result<&'static str> {
    match person.prefix() {
        "00Q" => Ok("LeadId"),
        "003" => Ok("ContactId"),
        _ => Err(Error::Config(format!(
            "{person} is not a Lead (00Q...) or Contact (003...) id, so it cannot be a campaign member"
        ))),
    }
}

/// One "put this person in this campaign with this status" request.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAdd {
    pub campaign_id: SfId,
    pub person_id: SfId,
    pub status: String,
}

/// How an add ended: a new member, or the existing member's status set.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAdded {
    pub member_id: String,
    pub already_member: bool,
}

impl Client {
    pub async fn update_campaign(&self, campaign_id: &SfId, fields: &Fields) -> Result<()> {
        self.update("Campaign", campaign_id.as_str(), fields).await
    }

    /// Adds a Lead or Contact to a campaign; if it is already a member
    /// (`DUPLICATE_VALUE`), sets that member's Status instead.
    pub async fn add_to_campaign(&self, add: &MemberAdd) -> Result<MemberAdded> {
        let mut results = self.add_members(std::slice::from_ref(add)).await?;
        results
            .pop()
            .expect("one result per add")
            .map_err(|errors| Error::Api {
                status: 400,
                errors,
            })
    }

    /// Adds many members in Collections calls; the duplicates are looked up with one
    /// query per 200 and their Status set with one Collections update per 200.
    pub async fn add_members(
        &self,
        adds: &[MemberAdd],
    ) -> Result<Vec<std::result::Result<MemberAdded, Vec<ApiError>>>> {
        let writes = adds
            .iter()
            .map(|add| {
                let mut fields = Fields::new();
                fields.insert("CampaignId".into(), json!(add.campaign_id.as_str()));
                fields.insert(
                    member_field(&add.person_id)?.into(),
                    json!(add.person_id.as_str()),
                );
                fields.insert("Status".into(), json!(add.status));
                Ok(RecordWrite {
                    sobject: "CampaignMember".into(),
                    id: None,
                    fields,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let created = self.create_many(&writes).await?;

        let duplicates: Vec<usize> = created
            .iter()
            .enumerate()
            .filter(|(_, result)| matches!(result, Err(errors) if errors.iter().any(|e| e.error_code == "DUPLICATE_VALUE")))
            .map(|(i, _)| i)
            .collect();
        let mut outcomes: Vec<_> = created
            .into_iter()
            .map(|result| {
                result.map(|saved| MemberAdded {
                    member_id: saved.id.unwrap_or_default(),
                    already_member: false,
                })
            })
            .collect();
        if duplicates.is_empty() {
            return Ok(outcomes);
        }

        let pairs: Vec<(SfId, SfId)> = duplicates
            .iter()
            .map(|&i| (adds[i].campaign_id.clone(), adds[i].person_id.clone()))
            .collect();
        let member_ids = self.find_members(&pairs).await?;
        let mut updates = Vec::new();
        let mut update_slots = Vec::new();
        for (&i, member_id) in duplicates.iter().zip(member_ids) {
            let Some(member_id) = member_id else { continue };
            let mut fields = Fields::new();
            fields.insert("Status".into(), json!(adds[i].status));
            updates.push(RecordWrite {
                sobject: "CampaignMember".into(),
                id: Some(member_id),
                fields,
            });
            update_slots.push(i);
        }
        let updated = self.update_many(&updates).await?;
        for ((i, write), result) in update_slots.into_iter().zip(&updates).zip(updated) {
            let member_id = write.id.clone().unwrap_or_default();
            outcomes[i] = result.map(|_| MemberAdded {
                member_id,
                already_member: true,
            });
        }
        Ok(outcomes)
    }

    /// Sets the Status of a member, named by its own id (00v) or by the person's id.
    pub async fn set_member_status(
        &self,
        campaign_id: &SfId,
        member_or_person: &SfId,
        status: &str,
    ) -> Result<String> {
        let member_id = self.member_id(campaign_id, member_or_person).await?;
        let mut fields = Fields::new();
        fields.insert("Status".into(), json!(status));
        self.update("CampaignMember", &member_id, &fields).await?;
        Ok(member_id)
    }

    /// Deletes the membership of a person (or the member named by its 00v id).
    pub async fn remove_from_campaign(
        &self,
        campaign_id: &SfId,
        member_or_person: &SfId,
    ) -> Result<String> {
        let member_id = self.member_id(campaign_id, member_or_person).await?;
        self.delete("CampaignMember", &member_id).await?;
        Ok(member_id)
    }

    async fn member_id(&self, campaign_id: &SfId, member_or_person: &SfId) -> Result<String> {
        if member_or_person.prefix() == "00v" {
            return Ok(member_or_person.to_string());
        }
        member_field(member_or_person)?;
        let pair = (campaign_id.clone(), member_or_person.clone());
        self.find_members(std::slice::from_ref(&pair))
            .await?
            .pop()
            .flatten()
            .ok_or_else(|| Error::Api {
                status: 404,
                errors: vec![ApiError::new(
                    "NOT_FOUND",
                    format!("{member_or_person} is not a member of campaign {campaign_id}"),
                )],
            })
    }

    /// The CampaignMember id for each (campaign, person) pair, `None` where there is none:
    /// one query per 200 pairs.
    pub async fn find_members(&self, pairs: &[(SfId, SfId)]) -> Result<Vec<Option<String>>> {
        let mut found = std::collections::HashMap::new();
        for chunk in pairs.chunks(200) {
            let campaigns = quote_list(chunk.iter().map(|(c, _)| c.as_str()));
            let people = quote_list(chunk.iter().map(|(_, p)| p.as_str()));
            let soql = format!(
                "SELECT Id, CampaignId, LeadId, ContactId FROM CampaignMember \
                 WHERE CampaignId IN {campaigns} AND (LeadId IN {people} OR ContactId IN {people})"
            );
            for member in self.query(&soql).await? {
                let text = |key: &str| member.get(key).and_then(Value::as_str).map(str::to_owned);
                let person = text("LeadId").or_else(|| text("ContactId"));
                if let (Some(id), Some(campaign), Some(person)) =
                    (text("Id"), text("CampaignId"), person)
                {
                    found.insert((campaign, person), id);
                }
            }
        }
        Ok(pairs
            .iter()
            .map(|(campaign, person)| {
                found
                    .get(&(campaign.to_string(), person.to_string()))
                    .cloned()
            })
            .collect())
    }

    /// The Lead or Contact ids for these emails, one query per type per 200 emails; a
    /// Contact is preferred when both exist. Emails match case-insensitively.
    pub async fn people_by_email(
        &self,
        emails: &[String],
    ) -> Result<std::collections::HashMap<String, SfId>> {
        let mut people = std::collections::HashMap::new();
        for sobject in ["Lead", "Contact"] {
            for chunk in emails.chunks(200) {
                let soql = format!(
                    "SELECT Id, Email FROM {sobject} WHERE Email IN {}",
                    quote_list(chunk.iter().map(String::as_str))
                );
                for record in self.query(&soql).await? {
                    let (Some(id), Some(email)) = (
                        record.get("Id").and_then(Value::as_str),
                        record.get("Email").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    if let Ok(id) = SfId::parse(id) {
                        // Contacts come second and overwrite Leads.
                        people.insert(email.to_lowercase(), id);
                    }
                }
            }
        }
        Ok(people)
    }

    /// The id of the campaign with this exact name, if any.
    pub async fn find_campaign(&self, name: &str) -> Result<Option<SfId>> {
        let soql = format!(
            "SELECT Id FROM Campaign WHERE Name = {} ORDER BY CreatedDate LIMIT 1",
            quote(name)
        );
        Ok(self.query_one(&soql).await?.and_then(|record| {
            record
                .get("Id")
                .and_then(Value::as_str)
                .and_then(|id| SfId::parse(id).ok())
        }))
    }
}
